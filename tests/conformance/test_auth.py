"""whoami, tokens and visibility (hub-api.md §2, §13.1 items 1 and 24)."""

import pytest
from huggingface_hub import CommitOperationAdd, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from hubtest import ORG, READ_TOKEN, USER, WRITE_TOKEN, raw_request


def test_whoami_write_token(api):
    me = api.whoami()
    assert me["name"] == USER
    assert me["type"] == "user"
    assert ORG in [org["name"] for org in me["orgs"]]
    assert me["auth"]["accessToken"]["role"] == "write"


def test_whoami_read_token(read_api):
    me = read_api.whoami()
    assert me["name"] == USER
    assert me["auth"]["accessToken"]["role"] == "read"


def test_whoami_invalid_token_is_401(api):
    with pytest.raises(HfHubHTTPError) as err:
        api.whoami(token="hf_not_a_valid_token_000000")
    assert err.value.response.status_code == 401
    assert "Invalid user token" in str(err.value)


def test_errors_carry_hub_error_headers(hub):
    # §13.0 rule 2: every error has X-Error-Code, X-Error-Message and a JSON {"error"} body.
    resp = raw_request("GET", f"{hub.url}/api/models/{USER}/does-not-exist", token=WRITE_TOKEN)
    assert resp.status == 404
    assert resp.headers.get("x-error-code") == "RepoNotFound"
    assert resp.headers.get("x-error-message")
    assert isinstance(resp.json()["error"], str)


def test_private_repo_invisible_to_anonymous(api, anon_api, name, cache_dir):
    repo = name()
    api.create_repo(repo, private=True)
    api.upload_file(path_or_fileobj=b"secret\n", path_in_repo="s.txt", repo_id=repo)
    assert api.model_info(repo).private is True

    assert anon_api.repo_exists(repo) is False
    assert anon_api.file_exists(repo, "s.txt") is False
    with pytest.raises(RepositoryNotFoundError):
        anon_api.model_info(repo)
    with pytest.raises(RepositoryNotFoundError):
        anon_api.list_repo_files(repo)
    with pytest.raises(RepositoryNotFoundError):
        anon_api.list_repo_refs(repo)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(repo, "s.txt", token=False, cache_dir=cache_dir)
    # A bad token sees no more than no token.
    bad = type(anon_api)(endpoint=anon_api.endpoint, token="hf_not_a_valid_token_000000")
    assert bad.repo_exists(repo) is False


def test_public_repo_visible_to_anonymous(api, anon_api, name, cache_dir):
    repo = name()
    api.create_repo(repo)
    api.upload_file(path_or_fileobj=b"hello\n", path_in_repo="hello.txt", repo_id=repo)
    assert anon_api.repo_exists(repo) is True
    assert anon_api.model_info(repo).private is False
    assert "hello.txt" in anon_api.list_repo_files(repo)
    path = hf_hub_download(repo, "hello.txt", token=False, cache_dir=cache_dir)
    assert open(path, "rb").read() == b"hello\n"


def test_read_token_reads_private_repo(api, read_api, name, cache_dir):
    repo = name()
    api.create_repo(repo, private=True)
    api.upload_file(path_or_fileobj=b"mine\n", path_in_repo="m.txt", repo_id=repo)
    assert read_api.repo_exists(repo) is True
    assert sorted(read_api.list_repo_files(repo)) == [".gitattributes", "m.txt"]
    path = hf_hub_download(repo, "m.txt", token=READ_TOKEN, cache_dir=cache_dir)
    assert open(path, "rb").read() == b"mine\n"


def _status(excinfo) -> int:
    return excinfo.value.response.status_code


def test_read_token_cannot_write(api, read_api, name):
    repo = name()
    api.create_repo(repo)
    head = api.model_info(repo).sha

    with pytest.raises(HfHubHTTPError) as err:
        read_api.create_repo(name())
    assert _status(err) == 403

    with pytest.raises(HfHubHTTPError) as err:
        read_api.create_commit(
            repo, [CommitOperationAdd("x.txt", b"x\n")], commit_message="should be refused"
        )
    assert _status(err) == 403

    with pytest.raises(HfHubHTTPError) as err:
        read_api.create_branch(repo, branch="dev")
    assert _status(err) == 403

    with pytest.raises(HfHubHTTPError) as err:
        read_api.create_tag(repo, tag="v1")
    assert _status(err) == 403

    with pytest.raises(HfHubHTTPError) as err:
        read_api.update_repo_settings(repo, private=True)
    assert _status(err) == 403

    with pytest.raises(HfHubHTTPError) as err:
        read_api.delete_repo(repo)
    assert _status(err) == 403

    # Nothing changed.
    info = api.model_info(repo)
    assert info.sha == head
    assert info.private is False
    refs = api.list_repo_refs(repo)
    assert [b.name for b in refs.branches] == ["main"]
    assert refs.tags == []


def test_read_token_cannot_write_space_settings(api, read_api, name):
    space = name()
    api.create_repo(space, repo_type="space", space_sdk="static")
    with pytest.raises(HfHubHTTPError) as err:
        read_api.add_space_secret(space, "K", "v")
    assert _status(err) == 403
    with pytest.raises(HfHubHTTPError) as err:
        read_api.add_space_variable(space, "K", "v")
    assert _status(err) == 403
    assert api.get_space_secrets(space) == {}
    assert api.get_space_variables(space) == {}


def test_write_token_writes_in_its_org_only(api, name):
    repo = name(namespace=ORG)
    url = api.create_repo(repo)
    assert url.repo_id == repo
    assert api.repo_exists(repo)
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo(name(namespace="someone-else"))
    assert _status(err) == 403
