"""The server's process contract: the `listening on` line, clean SIGTERM, and no data lost to kill -9."""

import time

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import RepositoryNotFoundError

from hubtest import LISTENING_RE, WRITE_TOKEN, deterministic_bytes, raw_request, read_tree


def test_listening_line_and_sigterm(start_hub):
    server = start_hub()
    assert LISTENING_RE.match(server.first_line)
    assert server.url.startswith("http://127.0.0.1:")
    assert not server.url.endswith(":0")
    resp = raw_request("GET", f"{server.url}/api/whoami-v2", token=WRITE_TOKEN)
    assert resp.status == 200
    time.sleep(0.5)
    assert server.terminate() == 0


def test_sigterm_right_after_listening_line(start_hub):
    """A supervisor may stop the hub as soon as it has read the `listening on` line: that must
    already be a clean shutdown (exit 0), not death by the signal's default action."""
    codes = []
    for _ in range(10):
        server = start_hub()
        codes.append(server.terminate())
    assert codes == [0] * 10


def _snapshot_state(api: HfApi, tmp_path, tag: str) -> dict:
    """Everything we wrote, read back through huggingface_hub."""
    state = {}
    for repo, repo_type in (("alice/persist-model", "model"), ("acme/persist-data", "dataset")):
        info = api.repo_info(repo, repo_type=repo_type)
        refs = api.list_repo_refs(repo, repo_type=repo_type, include_pull_requests=True)
        state[repo] = {
            "sha": info.sha,
            "private": info.private,
            "gated": info.gated,
            "branches": sorted((b.name, b.target_commit) for b in refs.branches),
            "tags": sorted((t.name, t.target_commit) for t in refs.tags),
            "prs": sorted((p.name, p.target_commit) for p in refs.pull_requests),
            "commits": [(c.commit_id, c.title) for c in api.list_repo_commits(repo, repo_type=repo_type)],
            "tree": sorted(
                (e.path, getattr(e, "blob_id", None), getattr(e, "size", None))
                for e in api.list_repo_tree(repo, repo_type=repo_type, recursive=True)
            ),
            "files": read_tree(
                snapshot_download(
                    repo, repo_type=repo_type, endpoint=api.endpoint, cache_dir=tmp_path / f"cache-{tag}-{repo_type}"
                )
            ),
        }
    space = "alice/persist-space"
    runtime = api.get_space_runtime(space)
    state[space] = {
        "sdk": api.space_info(space).sdk,
        "hardware": runtime.requested_hardware,
        "sleep": runtime.sleep_time,
        "secrets": sorted((k, s.description) for k, s in api.get_space_secrets(space).items()),
        "variables": sorted((k, v.value, v.description) for k, v in api.get_space_variables(space).items()),
    }
    return state


def test_state_survives_sigkill(start_hub, tmp_path):
    data_dir = tmp_path / "persistent-data"
    server = start_hub(data_dir=data_dir)
    api = HfApi(endpoint=server.url, token=WRITE_TOKEN)

    model = "alice/persist-model"
    api.create_repo(model, private=True)
    weights = deterministic_bytes(200_000, "persist-weights")
    c1 = api.create_commit(
        model,
        [
            CommitOperationAdd("config.json", b'{"a": 1}\n'),
            CommitOperationAdd("weights/model.bin", weights),
            CommitOperationAdd("docs/\u00e9t\u00e9.md", "\u00e9t\u00e9\n".encode()),
            CommitOperationAdd("empty.txt", b""),
            CommitOperationAdd("tmp/scratch.txt", b"scratch\n"),
        ],
        commit_message="first",
    )
    api.create_commit(model, [CommitOperationDelete("tmp/")], commit_message="clean", parent_commit=c1.oid)
    api.create_branch(model, branch="dev", revision=c1.oid)
    api.create_tag(model, tag="v1.0", revision=c1.oid, tag_message="one")
    pr = api.create_commit(model, [CommitOperationAdd("pr.txt", b"pr\n")], commit_message="pr", create_pr=True)
    assert pr.pr_num == 1

    dataset = "acme/persist-data"
    api.create_repo(dataset, repo_type="dataset")
    api.create_commit(
        dataset, [CommitOperationAdd("data/train.csv", b"x,y\n1,2\n")], commit_message="data", repo_type="dataset"
    )
    api.update_repo_settings(dataset, repo_type="dataset", gated="manual")

    space = "alice/persist-space"
    api.create_repo(space, repo_type="space", space_sdk="docker")
    api.add_space_secret(space, "API_KEY", "secret", description="key")
    api.add_space_variable(space, "MODEL_ID", model, description="model")
    api.request_space_hardware(space, "t4-small")
    api.set_space_sleep_time(space, 3600)

    before = _snapshot_state(api, tmp_path, "before")
    assert before[model]["private"] is True
    assert before[dataset]["gated"] == "manual"
    assert before[model]["files"]["weights/model.bin"] == weights
    assert before[space]["hardware"] == "t4-small" and before[space]["sleep"] == 3600

    server.kill()
    assert not server.alive()
    with pytest.raises(Exception):
        api.whoami()

    restarted = start_hub(data_dir=data_dir)
    api2 = HfApi(endpoint=restarted.url, token=WRITE_TOKEN)
    after = _snapshot_state(api2, tmp_path, "after")
    assert after == before

    # Still private to outsiders, and still writable, continuing the same history.
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=restarted.url, token=False).model_info(model)
    c3 = api2.create_commit(
        model, [CommitOperationAdd("after.txt", b"after\n")], commit_message="after restart",
        parent_commit=before[model]["sha"],
    )
    assert [c.commit_id for c in api2.list_repo_commits(model)][:2] == [c3.oid, before[model]["sha"]]
    got = hf_hub_download(model, "after.txt", endpoint=restarted.url, cache_dir=tmp_path / "cache-final")
    assert open(got, "rb").read() == b"after\n"
    pr2 = api2.create_commit(model, [CommitOperationAdd("pr2.txt", b"2\n")], commit_message="pr2", create_pr=True)
    assert pr2.pr_num == 2
