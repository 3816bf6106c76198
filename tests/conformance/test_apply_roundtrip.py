"""`hubsync apply` verified through the real `huggingface_hub` (issue 4, Acceptance).

hubsync applies a manifest with a model, a dataset and a Space to the suite's hub; then
`huggingface_hub` reads everything back: `snapshot_download` of every repo equals the local folders
byte for byte (LFS and regular files, nested paths, unicode names, empty files), the branches and
tags are where the manifest says, the Space has the declared hardware, sleep time, variables and
secrets, and a second `hubsync plan --detailed-exitcode` has nothing to do.

`hubsync demo --keep-serving` is checked the same way: the snippet it prints runs as printed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from huggingface_hub import snapshot_download

from hubtest import WRITE_TOKEN, deterministic_bytes, hubsync_bin, read_tree, sha256, write_tree

SECRET_VALUE = "roundtrip-secret-value-0123"


def _big_text() -> bytes:
    # Over 10 MB of plain text: LFS by size alone.
    line = b"line %08d of a large plain-text file that only the size rule sends to LFS\n"
    return b"".join(line % i for i in range(11 * 1024 * 1024 // len(line)))


MODEL = {
    "README.md": b"---\nlicense: mit\n---\n# Round trip\n",
    "config.json": b'{"hidden_size": 8}\n',
    "empty.txt": b"",
    "nested/deep/dir/notes.txt": b"deep notes\n",
    "unicode/h\u00e9llo w\u00f6rld \u2713.txt": "\u00fcn\u00efc\u00f6d\u00e9 \u2603\n".encode(),
    "\u65e5\u672c\u8a9e/\u30d5\u30a1\u30a4\u30eb.md": "\u3053\u3093\u306b\u3061\u306f\n".encode(),
    "weights/model.safetensors": deterministic_bytes(11 * 1000 * 1000, "roundtrip-weights"),
    "weights/small.bin": deterministic_bytes(1024, "roundtrip-small"),
    "weights/empty.bin": b"",
    "blobs/data.raw": b"\x00\x01\x02\x03" * 750,
    "big/corpus.txt": _big_text(),
}
DATASET = {
    "README.md": b"---\nlicense: cc-by-4.0\n---\n# Data\n",
    "data/train/part-000.csv": b"text,label\nhello,1\n",
    "data/train/part-001.csv": b"text,label\nbye,0\n",
    "data/empty.csv": b"",
    "data/\u00e9t\u00e9 2024.parquet": deterministic_bytes(50_000, "roundtrip-parquet"),
}
SPACE = {
    "README.md": b"---\ntitle: Round trip\nsdk: gradio\napp_file: app.py\n---\n",
    "app.py": b"import gradio as gr\n",
    "requirements.txt": b"gradio\n",
    "static/logo.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>\n",
}

MANIFEST = """\
version: 1
defaults:
  commit: {{ message: "Round trip", max_files: 4 }}
repos:
  - id: {model}
    files:
      - {{ local: ./model, prune: true }}
    branches:
      - {{ name: dev, from: main }}
    tags:
      - {{ name: v1.0, revision: main, message: "round trip" }}
  - id: {dataset}
    type: dataset
    private: true
    files:
      - {{ local: ./dataset }}
  - id: {space}
    type: space
    files:
      - {{ local: ./space }}
    space:
      sdk: gradio
      hardware: t4-small
      sleep_time: 1800
      variables:
        MODEL_ID: {model}
        THREADS: 4
      secrets:
        API_KEY: "${{ROUNDTRIP_API_KEY}}"
"""


def hubsync(args: list[str], cwd: Path, url: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE_"))}
    env.update(
        HF_ENDPOINT=url,
        HF_TOKEN=WRITE_TOKEN,
        HF_HOME=str(cwd / ".hf-home"),
        NO_COLOR="1",
        ROUNDTRIP_API_KEY=SECRET_VALUE,
    )
    proc = subprocess.run(
        [str(hubsync_bin()), *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"hubsync {' '.join(args)} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout.decode(errors='replace')}\n--- stderr\n{proc.stderr.decode(errors='replace')}"
        )
    return proc


@pytest.fixture(scope="module")
def applied(hub, tmp_path_factory):
    """The three repos, applied once by hubsync; their ids and the workspace."""
    ws = tmp_path_factory.mktemp("apply-roundtrip")
    write_tree(ws / "model", MODEL)
    write_tree(ws / "dataset", DATASET)
    write_tree(ws / "space", SPACE)
    ids = {"model": "alice/roundtrip-model", "dataset": "alice/roundtrip-data", "space": "alice/roundtrip-space"}
    (ws / "hubsync.yaml").write_text(MANIFEST.format(**ids))
    proc = hubsync(["apply", "--auto-approve", "--format", "json"], ws, hub.url)
    return {"ws": ws, "ids": ids, "stdout": proc.stdout.decode(), "stderr": proc.stderr.decode()}


@pytest.mark.parametrize(
    "kind,repo_type,files",
    [("model", "model", MODEL), ("dataset", "dataset", DATASET), ("space", "space", SPACE)],
)
def test_snapshot_download_equals_the_local_folder(applied, cache_dir, kind, repo_type, files):
    folder = snapshot_download(applied["ids"][kind], repo_type=repo_type, cache_dir=cache_dir)
    got = read_tree(Path(folder))
    got.pop(".gitattributes")
    assert sorted(got) == sorted(files)
    for path, data in files.items():
        assert got[path] == data, f"{path}: {len(got[path])} bytes, expected {len(data)}"


def test_lfs_and_regular_files_are_stored_as_declared(api, applied):
    entries = {e.path: e for e in api.list_repo_tree(applied["ids"]["model"], recursive=True) if hasattr(e, "blob_id")}
    for path in ("weights/model.safetensors", "weights/small.bin", "blobs/data.raw", "big/corpus.txt"):
        assert entries[path].lfs is not None, path
        assert entries[path].lfs.sha256 == sha256(MODEL[path]), path
    for path in ("README.md", "config.json", "empty.txt", "unicode/h\u00e9llo w\u00f6rld \u2713.txt"):
        assert entries[path].lfs is None, path


def test_refs_are_as_declared(api, applied):
    repo = applied["ids"]["model"]
    refs = api.list_repo_refs(repo)
    branches = {b.name: b.target_commit for b in refs.branches}
    tags = {t.name: t.target_commit for t in refs.tags}
    head = api.model_info(repo).sha
    assert set(branches) == {"main", "dev"}
    assert branches["main"] == head
    assert tags == {"v1.0": head}, "the tag is on main's head after apply's commits"
    # 4 files a commit (plus the repo's initial commit), each on top of the previous one.
    n = -(-len(MODEL) // 4)
    commits = api.list_repo_commits(repo)
    assert len(commits) == 1 + n
    assert [c.title for c in commits[:-1]] == [f"Round trip (part {i}/{n})" for i in range(n, 0, -1)]
    assert commits[-1].title == "initial commit"


def test_dataset_is_private(api, applied, anon_api):
    from huggingface_hub.errors import RepositoryNotFoundError

    assert api.dataset_info(applied["ids"]["dataset"]).private is True
    with pytest.raises(RepositoryNotFoundError):
        anon_api.dataset_info(applied["ids"]["dataset"])


def test_space_settings_are_as_declared(api, applied):
    space = applied["ids"]["space"]
    runtime = api.get_space_runtime(space)
    assert runtime.requested_hardware == "t4-small"
    assert runtime.sleep_time == 1800
    variables = {k: v.value for k, v in api.get_space_variables(space).items()}
    assert variables == {"MODEL_ID": applied["ids"]["model"], "THREADS": "4"}
    secrets = api.get_space_secrets(space)
    assert set(secrets) == {"API_KEY"}
    assert api.space_info(space).sdk == "gradio"


def test_secret_values_never_print(applied):
    assert SECRET_VALUE not in applied["stdout"]
    assert SECRET_VALUE not in applied["stderr"]


def test_a_second_plan_has_nothing_to_do(hub, applied):
    proc = hubsync(["plan", "--detailed-exitcode"], applied["ws"], hub.url, check=False)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
    assert "No changes." in proc.stdout.decode()


def test_demo_keep_serving_prints_a_snippet_that_works(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE_"))}
    env["NO_COLOR"] = "1"
    proc = subprocess.Popen(
        [str(hubsync_bin()), "demo", "--keep-serving"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read():
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.append(raw.decode("utf-8", "replace"))
            if "keeps running until Ctrl-C" in lines[-1]:
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    threading.Thread(target=lambda: proc.stderr.read(), daemon=True).start()
    try:
        assert ready.wait(120), "the demo did not get to the end"
        out = "".join(lines)
        assert proc.poll() is None, f"the demo exited early ({proc.returncode}):\n{out}"
        exports = dict(re.findall(r"^export (HF_[A-Z_]+)=(\S+)$", out, re.M))
        assert set(exports) == {"HF_ENDPOINT", "HF_TOKEN", "HF_HUB_DISABLE_XET"}
        snippet = re.search(r"^python - <<'EOF'\n(.*?)^EOF$", out, re.M | re.S)
        assert snippet, out
        run_env = {**env, **exports, "HF_HOME": str(tmp_path / "hf-home")}
        result = subprocess.run(
            [sys.executable, "-"],
            input=snippet.group(1).encode(),
            env=run_env,
            capture_output=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr.decode()
        printed = result.stdout.decode().splitlines()
        assert printed[0].endswith("Sync from the hubsync demo"), printed
        assert printed[1].endswith("initial commit"), printed
        assert printed[2] == "cpu-upgrade"
        snapshot = Path(printed[3])
        assert (snapshot / "model.safetensors").stat().st_size > 10 * 1000 * 1000
        data_dir = Path(re.search(r"\(data in `([^`]+)`\)", out).group(1))
        assert data_dir.exists()
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    assert code == 0
    time.sleep(0.1)
    assert not data_dir.parent.exists(), "the demo's temporary folder is deleted on Ctrl-C"
