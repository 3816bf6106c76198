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
    # An invalid token is refused like on the Hub (401, "Invalid credentials"), whether the repo
    # exists or not, so it learns nothing either.
    bad = type(anon_api)(endpoint=anon_api.endpoint, token="hf_not_a_valid_token_000000")
    for target in (repo, name()):
        with pytest.raises(HfHubHTTPError) as err:
            bad.model_info(target)
        assert err.value.response.status_code == 401
        assert not isinstance(err.value, RepositoryNotFoundError)


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


def test_read_token_exist_ok_falls_back_to_reading(api, read_api, name):
    # On 403 with exist_ok, the client checks that the repo/branch exists (hub-api.md §3.1, §8).
    repo = name()
    api.create_repo(repo)
    url = read_api.create_repo(repo, exist_ok=True)
    assert url.repo_id == repo
    read_api.create_branch(repo, branch="main", exist_ok=True)
    with pytest.raises(HfHubHTTPError) as err:
        read_api.create_branch(repo, branch="not-there", exist_ok=True)
    assert _status(err) == 403
    with pytest.raises(HfHubHTTPError) as err:
        read_api.create_repo(name(), exist_ok=True)
    assert _status(err) == 403


@pytest.fixture(scope="module")
def refusal_space(api):
    space = "alice/refusal-space"
    api.create_repo(space, repo_type="space", space_sdk="static", exist_ok=True)
    return space


# Bodies big enough that the server cannot have read them whole before it refuses the request.
_PAD = b" " * 256 * 1024
_BIG_NDJSON = (
    b'{"key":"header","value":{"summary":"s"}}\n{"key":"file","value":{"path":"x","content":"'
    + b"eA==" * (64 * 1024)
    + b'","encoding":"base64"}}\n'
)


@pytest.mark.parametrize(
    "method, path, token, body, content_type",
    [
        ("POST", "/api/spaces/alice/refusal-space/secrets", READ_TOKEN, b'{"key":"K","value":"v"}' + _PAD, "application/json"),
        ("POST", "/api/spaces/alice/refusal-space/variables", READ_TOKEN, b'{"key":"K","value":"v"}' + _PAD, "application/json"),
        ("POST", "/api/repos/create", "hf_not_a_valid_token_000000", b'{"name":"x","organization":"alice"}' + _PAD, "application/json"),
        ("POST", "/api/repos/create", READ_TOKEN, b'{"name":"x","organization":"alice"}' + _PAD, "application/json"),
        ("POST", "/api/spaces/alice/refusal-space/commit/main", READ_TOKEN, _BIG_NDJSON, "application/x-ndjson"),
        ("POST", "/api/models/alice/no-such-repo/commit/main", WRITE_TOKEN, _BIG_NDJSON, "application/x-ndjson"),
        ("POST", "/api/spaces/alice/refusal-space/branch/dev", READ_TOKEN, b"{}" + _PAD, "application/json"),
        ("PUT", "/api/spaces/alice/refusal-space/settings", READ_TOKEN, b'{"visibility":"private"}' + _PAD, "application/json"),
    ],
    ids=[
        "secret-read-token", "variable-read-token", "create-bad-token", "create-read-token", "commit-read-token",
        "commit-missing-repo", "branch-read-token", "settings-read-token",
    ],
)
def test_connection_reusable_after_refused_write(hub, refusal_space, method, path, token, body, content_type):
    """huggingface_hub pools keep-alive connections (httpx): after a refusal the server must either
    keep the connection usable or say `Connection: close`; closing silently makes the client's
    next call fail with "Server disconnected without sending a response"."""
    import http.client
    import time
    import urllib.parse

    parts = urllib.parse.urlsplit(hub.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, path, body=body,
                     headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
        resp = conn.getresponse()
        resp.read()
        assert resp.status in (401, 403, 404), resp.status
        if (resp.getheader("connection") or "").lower() == "close":
            return  # announced: a client opens a new connection
        time.sleep(0.1)  # let a silent close reach us, as it would between two client calls
        conn.request("GET", "/api/whoami-v2", headers={"Authorization": f"Bearer {WRITE_TOKEN}"})
        again = conn.getresponse()
        again.read()
        assert again.status == 200
    finally:
        conn.close()
