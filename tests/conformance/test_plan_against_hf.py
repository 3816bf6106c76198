"""`hubsync plan` against a repo that `huggingface_hub` wrote (issue 3, Acceptance).

`huggingface_hub` seeds a repo with `upload_folder` (regular files, an LFS file, nested paths);
hubsync plans a local folder against it, and the JSON plan is exactly right: the files that match
are left out, the differing one is an update with the old and new git oids, a local-only file is
an add, and with `prune` a remote-only file is a delete. Then a commit made by `huggingface_hub`
out of band shows up as exactly that drift.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from huggingface_hub import CommitOperationAdd

from hubtest import deterministic_bytes, write_tree
from test_apply_roundtrip import hubsync


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


SEED = {
    "config.json": b'{"hidden_size": 8}\n',
    "nested/a/notes.txt": b"notes\n",
    "weights/model.safetensors": deterministic_bytes(200_000, "hf-seed-weights"),
    "remote-only.txt": b"only on the hub\n",
}


def plan_json(ws: Path, url: str, detailed: bool = False) -> tuple[int, dict]:
    args = ["plan", "--format", "json"] + (["--detailed-exitcode"] if detailed else [])
    proc = hubsync(args, ws, url, check=False)
    assert proc.returncode in (0, 2), proc.stderr.decode()
    return proc.returncode, json.loads(proc.stdout)


def file_actions(plan: dict) -> list[tuple[str, str]]:
    (repo,) = plan["repos"]
    return [(a["kind"], a["path"]) for a in repo["actions"] if a["kind"].startswith("file_")]


def test_plan_of_a_repo_seeded_by_huggingface_hub(hub, api, name, tmp_path):
    repo_id = name("hfseed")
    api.create_repo(repo_id)
    seed_dir = tmp_path / "seed"
    write_tree(seed_dir, SEED)
    seeded = api.upload_folder(repo_id=repo_id, folder_path=seed_dir)

    # Locally: two files identical, one changed, one new, and no `remote-only.txt`.
    ws = tmp_path / "ws"
    local = dict(SEED)
    del local["remote-only.txt"]
    local["config.json"] = b'{"hidden_size": 16}\n'
    local["new/file.txt"] = b"new\n"
    write_tree(ws / "model", local)
    (ws / "hubsync.yaml").write_text(
        f"version: 1\nrepos:\n  - id: {repo_id}\n    files:\n      - {{ local: ./model, prune: true }}\n"
    )

    code, plan = plan_json(ws, hub.url, detailed=True)
    assert code == 2
    (repo,) = plan["repos"]
    assert repo["base_commit"] == seeded.oid
    assert file_actions(plan) == [
        ("file_update", "config.json"),
        ("file_add", "new/file.txt"),
        ("file_delete", "remote-only.txt"),
    ]
    update = next(a for a in repo["actions"] if a["kind"] == "file_update")
    assert update["old_git_oid"] == git_blob_oid(SEED["config.json"])
    assert update["git_oid"] == git_blob_oid(local["config.json"])
    assert update["sha256"] == hashlib.sha256(local["config.json"]).hexdigest()
    assert update["lfs"] is False
    assert repo["commits"] == 1 and repo["upload_bytes"] == 0

    # Apply, then the plan is empty.
    hubsync(["apply", "-y"], ws, hub.url)
    code, plan = plan_json(ws, hub.url, detailed=True)
    assert code == 0 and file_actions(plan) == []

    # A commit by huggingface_hub out of band: exactly that drift.
    api.create_commit(
        repo_id,
        operations=[CommitOperationAdd("nested/a/notes.txt", b"edited elsewhere\n")],
        commit_message="edit out of band",
    )
    code, plan = plan_json(ws, hub.url, detailed=True)
    assert code == 2
    assert file_actions(plan) == [("file_update", "nested/a/notes.txt")]
    (repo,) = plan["repos"]
    (update,) = [a for a in repo["actions"] if a["kind"] == "file_update"]
    assert update["old_git_oid"] == git_blob_oid(b"edited elsewhere\n")
    assert update["git_oid"] == git_blob_oid(SEED["nested/a/notes.txt"])
    assert [a["kind"] for a in repo["actions"]] == ["file_update"]
