"""Repository lifecycle and info (hub-api.md §3, §13.1 items 2-4 and 24)."""

import re

import pytest
from huggingface_hub import DatasetInfo, ModelInfo, SpaceInfo
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

from hubtest import USER, git_blob_sha1, lfs_pointer, sha256

HEX40 = re.compile(r"^[0-9a-f]{40}$")


@pytest.mark.parametrize(
    "repo_type, prefix, info_type",
    [("model", "", ModelInfo), ("dataset", "datasets/", DatasetInfo)],
)
def test_create_repo(api, hub, name, repo_type, prefix, info_type):
    repo = name(f"create-{repo_type}")
    url = api.create_repo(repo, repo_type=repo_type)
    assert str(url) == f"{hub.url}/{prefix}{repo}"
    assert url.repo_id == repo
    assert url.repo_type == repo_type
    assert url.endpoint == hub.url

    info = api.repo_info(repo, repo_type=repo_type)
    assert isinstance(info, info_type)
    assert info.id == repo
    assert HEX40.match(info.sha)
    assert info.private is False
    assert info.last_modified is not None
    assert [s.rfilename for s in info.siblings] == [".gitattributes"]
    assert api.repo_exists(repo, repo_type=repo_type)
    # The same name as another type is a different repo.
    other = "dataset" if repo_type == "model" else "model"
    assert not api.repo_exists(repo, repo_type=other)


def test_create_space_with_sdk(api, hub, name):
    repo = name()
    url = api.create_repo(repo, repo_type="space", space_sdk="gradio")
    assert str(url) == f"{hub.url}/spaces/{repo}"
    assert url.repo_type == "space"
    info = api.space_info(repo)
    assert isinstance(info, SpaceInfo)
    assert info.id == repo
    assert info.sdk == "gradio"
    assert [s.rfilename for s in info.siblings] == [".gitattributes"]


def test_create_private_repo(api, name):
    repo = name()
    api.create_repo(repo, private=True)
    assert api.model_info(repo).private is True
    repo2 = name()
    api.create_repo(repo2, visibility="private", repo_type="dataset")
    assert api.dataset_info(repo2).private is True


def test_create_repo_without_namespace_uses_token_user(api, name):
    short = name().split("/")[1]
    url = api.create_repo(short)
    assert url.repo_id == f"{USER}/{short}"
    assert api.repo_exists(f"{USER}/{short}")


def test_create_existing_repo(api, hub, name):
    repo = name()
    api.create_repo(repo, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"keep\n", path_in_repo="keep.txt", repo_id=repo, repo_type="dataset")
    head = api.dataset_info(repo).sha

    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo(repo, repo_type="dataset")
    assert err.value.response.status_code == 409

    # exist_ok swallows the 409 and still needs the `url` of its body (hub-api.md §3.1).
    url = api.create_repo(repo, repo_type="dataset", exist_ok=True)
    assert str(url) == f"{hub.url}/datasets/{repo}"
    assert url.repo_id == repo
    # ...and leaves the repo alone.
    assert api.dataset_info(repo).sha == head
    assert "keep.txt" in api.list_repo_files(repo, repo_type="dataset")


def test_new_repo_starts_with_initial_commit(api, name):
    repo = name()
    api.create_repo(repo)
    commits = api.list_repo_commits(repo)
    assert len(commits) == 1
    assert commits[0].title == "initial commit"
    assert commits[0].authors == ["system"]
    assert commits[0].commit_id == api.model_info(repo).sha
    [entry] = list(api.list_repo_tree(repo))
    assert entry.path == ".gitattributes"
    # The `.gitattributes` LFS-tracks binary extensions and its tree oid is its git blob SHA-1.
    from huggingface_hub import hf_hub_download

    text = open(hf_hub_download(repo, ".gitattributes"), "rb").read()
    assert b"*.bin filter=lfs" in text
    assert b"*.safetensors filter=lfs" in text
    assert entry.blob_id == git_blob_sha1(text)
    assert entry.size == len(text)


def test_delete_repo(api, name):
    for repo_type in ("model", "dataset", "space"):
        repo = name(f"delete-{repo_type}")
        api.create_repo(repo, repo_type=repo_type, space_sdk="static" if repo_type == "space" else None)
        assert api.repo_exists(repo, repo_type=repo_type)
        api.delete_repo(repo, repo_type=repo_type)
        assert not api.repo_exists(repo, repo_type=repo_type)
        with pytest.raises(RepositoryNotFoundError):
            api.repo_info(repo, repo_type=repo_type)


def test_delete_missing_repo(api, name):
    repo = name()
    with pytest.raises(RepositoryNotFoundError):
        api.delete_repo(repo)
    api.delete_repo(repo, missing_ok=True)


def test_delete_then_recreate_starts_fresh(api, name):
    repo = name()
    api.create_repo(repo)
    api.upload_file(path_or_fileobj=b"old\n", path_in_repo="old.txt", repo_id=repo)
    api.delete_repo(repo)
    api.create_repo(repo)
    assert api.list_repo_files(repo) == [".gitattributes"]
    assert len(api.list_repo_commits(repo)) == 1


def test_update_repo_settings_visibility(api, name):
    repo = name()
    api.create_repo(repo)
    api.update_repo_settings(repo, private=True)
    assert api.model_info(repo).private is True
    api.update_repo_settings(repo, visibility="public")
    assert api.model_info(repo).private is False
    api.update_repo_settings(repo, visibility="private")
    assert api.model_info(repo).private is True
    api.update_repo_settings(repo, private=False)
    assert api.model_info(repo).private is False


def test_update_repo_settings_gated(api, name):
    repo = name()
    api.create_repo(repo, repo_type="dataset")
    assert api.dataset_info(repo).gated is False
    api.update_repo_settings(repo, repo_type="dataset", gated="auto")
    assert api.dataset_info(repo).gated == "auto"
    api.update_repo_settings(repo, repo_type="dataset", gated="manual")
    assert api.dataset_info(repo).gated == "manual"
    api.update_repo_settings(repo, repo_type="dataset", gated=False)
    assert api.dataset_info(repo).gated is False


def test_update_settings_of_missing_repo(api, name):
    with pytest.raises(RepositoryNotFoundError):
        api.update_repo_settings(name(), private=True)


def test_repo_info_at_revision(api, name):
    repo = name()
    api.create_repo(repo)
    first = api.model_info(repo).sha
    c1 = api.upload_file(path_or_fileobj=b"1\n", path_in_repo="one.txt", repo_id=repo)
    c2 = api.upload_file(path_or_fileobj=b"2\n", path_in_repo="two.txt", repo_id=repo)
    api.create_branch(repo, branch="old", revision=c1.oid)
    api.create_tag(repo, tag="v-first", revision=first)

    assert api.model_info(repo).sha == c2.oid
    assert api.model_info(repo, revision="main").sha == c2.oid
    assert api.model_info(repo, revision="old").sha == c1.oid
    assert api.model_info(repo, revision="v-first").sha == first
    assert api.model_info(repo, revision=c1.oid).sha == c1.oid
    assert api.model_info(repo, revision=c1.oid[:7]).sha == c1.oid
    assert sorted(s.rfilename for s in api.model_info(repo, revision="old").siblings) == [
        ".gitattributes",
        "one.txt",
    ]
    assert sorted(s.rfilename for s in api.model_info(repo).siblings) == [".gitattributes", "one.txt", "two.txt"]
    with pytest.raises(RevisionNotFoundError):
        api.model_info(repo, revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(repo, revision="0" * 40)


def test_repo_and_file_exists(api, name):
    repo = name()
    assert api.repo_exists(repo) is False
    assert api.file_exists(repo, "a.txt") is False
    api.create_repo(repo)
    api.upload_file(path_or_fileobj=b"a\n", path_in_repo="dir/a.txt", repo_id=repo)
    assert api.repo_exists(repo) is True
    assert api.file_exists(repo, "dir/a.txt") is True
    assert api.file_exists(repo, "dir/b.txt") is False
    assert api.file_exists(repo, "dir/a.txt", revision="main") is True
    assert api.file_exists(repo, "dir/a.txt", revision="no-such-branch") is False
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(name())


def test_repo_info_files_metadata(api, name):
    repo = name()
    api.create_repo(repo)
    weights = b"\x00\x01" * 600
    api.upload_file(path_or_fileobj=weights, path_in_repo="w.bin", repo_id=repo)
    api.upload_file(path_or_fileobj=b"text\n", path_in_repo="t.txt", repo_id=repo)
    siblings = {s.rfilename: s for s in api.model_info(repo, files_metadata=True).siblings}
    assert set(siblings) == {".gitattributes", "w.bin", "t.txt"}
    assert siblings["t.txt"].size == 5
    assert siblings["t.txt"].blob_id == git_blob_sha1(b"text\n")
    assert siblings["t.txt"].lfs is None
    assert siblings["w.bin"].size == len(weights)
    assert siblings["w.bin"].lfs.sha256 == sha256(weights)
    assert siblings["w.bin"].lfs.size == len(weights)
    assert siblings["w.bin"].lfs.pointer_size == len(lfs_pointer(weights))
    assert siblings["w.bin"].blob_id == git_blob_sha1(lfs_pointer(weights))


def test_create_space_with_settings(api, name):
    space = name()
    api.create_repo(
        space,
        repo_type="space",
        space_sdk="docker",
        space_hardware="t4-small",
        space_sleep_time=3600,
        space_secrets=[{"key": "API_KEY", "value": "v", "description": "key"}],
        space_variables=[{"key": "MODEL_ID", "value": "alice/m"}],
    )
    assert api.space_info(space).sdk == "docker"
    runtime = api.get_space_runtime(space)
    assert runtime.requested_hardware == "t4-small"
    assert runtime.sleep_time == 3600
    secrets = api.get_space_secrets(space)
    assert set(secrets) == {"API_KEY"}
    assert secrets["API_KEY"].description == "key"
    assert {k: v.value for k, v in api.get_space_variables(space).items()} == {"MODEL_ID": "alice/m"}
