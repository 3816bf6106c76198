"""`hubsync apply` against a concurrent `huggingface_hub` writer (issue 6, concurrent writers).

While `hubsync apply -y` runs (its LFS upload held by a hub started with
`--faults lfs_upload:delay=1500ms`), `huggingface_hub.create_commit` writes to the same branch:

- an unrelated path: apply re-reads the branch, commits on top of it, and both changes are there;
- a path hubsync planned to write: apply stops with exit 1 and "changed remotely" naming the path,
  and the hub holds `huggingface_hub`'s version, with nothing of hubsync's change half-applied.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download

from hubtest import WRITE_TOKEN, deterministic_bytes, hubsync_bin, write_tree
from test_apply_roundtrip import SECRET_VALUE, hubsync

MANIFEST = """\
version: 1
defaults:
  commit: {{ message: "concurrent writer" }}
repos:
  - id: {repo}
    files:
      - {{ local: ./out }}
"""


def _seed(ws: Path, url: str, repo: str) -> None:
    """The repo as hubsync first applies it: a regular file and an LFS file."""
    write_tree(ws / "out", {"x.txt": b"x1\n", "w.bin": deterministic_bytes(5000, f"{repo}-w1")})
    (ws / "hubsync.yaml").write_text(MANIFEST.format(repo=repo))
    hubsync(["apply", "-y"], ws, url)


def _apply_with_a_window(ws: Path, url: str, meanwhile) -> tuple[int, str]:
    """Runs `apply -y --format json`; once its LFS upload has started (and is held by the hub),
    calls `meanwhile()`. Returns the exit code and stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE_"))}
    env.update(
        HF_ENDPOINT=url,
        HF_TOKEN=WRITE_TOKEN,
        HF_HOME=str(ws / ".hf-home"),
        NO_COLOR="1",
        ROUNDTRIP_API_KEY=SECRET_VALUE,
    )
    proc = subprocess.Popen(
        [str(hubsync_bin()), "apply", "-y", "--format", "json"],
        cwd=ws,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stderr: list[bytes] = []
    drain = threading.Thread(target=lambda: stderr.append(proc.stderr.read()), daemon=True)
    drain.start()
    deadline = time.monotonic() + 60
    started = False
    try:
        for line in proc.stdout:
            if json.loads(line).get("type") == "upload_started":
                started = True
                break
            assert time.monotonic() < deadline, "apply never reached its uploads"
        assert started, "apply ended before it started an upload"
        meanwhile()
        proc.stdout.read()
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    drain.join(timeout=10)
    return code, b"".join(stderr).decode(errors="replace")


def _held_hub(start_hub):
    return start_hub(["--faults", "lfs_upload:delay=1500ms"])


def _download(url: str, repo: str, path: str, cache: Path) -> bytes:
    return Path(
        hf_hub_download(repo, path, endpoint=url, token=WRITE_TOKEN, cache_dir=cache, force_download=True)
    ).read_bytes()


def test_an_hf_commit_to_an_unrelated_path_is_absorbed(start_hub, name, tmp_path):
    hub = _held_hub(start_hub)
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    repo = name("hf-absorb")
    ws = tmp_path / "ws"
    ws.mkdir()
    _seed(ws, hub.url, repo)

    new_w = deterministic_bytes(6000, f"{repo}-w2")
    write_tree(ws / "out", {"x.txt": b"x2\n", "w.bin": new_w})
    theirs: list[str] = []

    def meanwhile():
        info = api.create_commit(
            repo,
            operations=[CommitOperationAdd("notes/unrelated.txt", b"theirs\n")],
            commit_message="huggingface_hub meanwhile",
        )
        theirs.append(info.oid)

    code, err = _apply_with_a_window(ws, hub.url, meanwhile)
    assert code == 0, err
    history = api.list_repo_commits(repo)
    assert history[1].commit_id == theirs[0], "hubsync's commit sits on top of huggingface_hub's"
    cache = tmp_path / "cache"
    assert _download(hub.url, repo, "x.txt", cache) == b"x2\n"
    assert _download(hub.url, repo, "w.bin", cache) == new_w
    assert _download(hub.url, repo, "notes/unrelated.txt", cache) == b"theirs\n"


def test_an_hf_commit_to_a_planned_path_is_a_clean_conflict(start_hub, name, tmp_path):
    hub = _held_hub(start_hub)
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    repo = name("hf-conflict")
    ws = tmp_path / "ws"
    ws.mkdir()
    _seed(ws, hub.url, repo)
    old_w = (ws / "out" / "w.bin").read_bytes()

    write_tree(ws / "out", {"x.txt": b"ours\n", "w.bin": deterministic_bytes(6000, f"{repo}-w2")})
    theirs: list[str] = []

    def meanwhile():
        info = api.create_commit(
            repo,
            operations=[CommitOperationAdd("x.txt", b"theirs\n")],
            commit_message="huggingface_hub meanwhile",
        )
        theirs.append(info.oid)

    code, err = _apply_with_a_window(ws, hub.url, meanwhile)
    assert code == 1, err
    assert "changed remotely" in err, err
    assert "`x.txt`" in err, f"names the path: {err}"
    assert "`w.bin`" not in err.split("changed remotely", 1)[1].splitlines()[0], f"only the conflicting path: {err}"
    # huggingface_hub's commit is the head; nothing of hubsync's change landed.
    assert api.list_repo_commits(repo)[0].commit_id == theirs[0]
    cache = tmp_path / "cache"
    assert _download(hub.url, repo, "x.txt", cache) == b"theirs\n"
    assert _download(hub.url, repo, "w.bin", cache) == old_w
