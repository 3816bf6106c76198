"""Branches, tags and list_repo_refs (hub-api.md §4.3, §8, §13.1 items 7-11)."""

import pytest
from huggingface_hub import CommitOperationAdd, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RevisionNotFoundError


@pytest.fixture
def repo(api, name):
    """A repo with two commits on main: (repo id, [initial, c1, c2])."""
    repo = name()
    api.create_repo(repo, repo_type="dataset")
    initial = api.dataset_info(repo).sha
    c1 = api.create_commit(repo, [CommitOperationAdd("v.txt", b"1\n")], commit_message="v1", repo_type="dataset").oid
    c2 = api.create_commit(repo, [CommitOperationAdd("v.txt", b"2\n")], commit_message="v2", repo_type="dataset").oid
    return repo, [initial, c1, c2]


def _refs(api, repo, **kw):
    refs = api.list_repo_refs(repo, repo_type="dataset", **kw)
    return (
        {b.name: (b.ref, b.target_commit) for b in refs.branches},
        {t.name: (t.ref, t.target_commit) for t in refs.tags},
        refs,
    )


def test_list_repo_refs_of_new_repo(api, repo):
    repo, (_, _, head) = repo
    branches, tags, refs = _refs(api, repo)
    assert branches == {"main": ("refs/heads/main", head)}
    assert tags == {}
    assert refs.converts == []
    assert refs.pull_requests is None
    _, _, with_prs = _refs(api, repo, include_pull_requests=True)
    assert with_prs.pull_requests == []


def test_create_and_delete_branch(api, repo):
    repo, (initial, c1, head) = repo
    api.create_branch(repo, repo_type="dataset", branch="dev")
    api.create_branch(repo, repo_type="dataset", branch="from-c1", revision=c1)
    api.create_branch(repo, repo_type="dataset", branch="from-short", revision=initial[:7])
    api.create_branch(repo, repo_type="dataset", branch="feature/nested-name")
    branches, _, _ = _refs(api, repo)
    assert branches == {
        "main": ("refs/heads/main", head),
        "dev": ("refs/heads/dev", head),
        "from-c1": ("refs/heads/from-c1", c1),
        "from-short": ("refs/heads/from-short", initial),
        "feature/nested-name": ("refs/heads/feature/nested-name", head),
    }
    assert api.dataset_info(repo, revision="feature/nested-name").sha == head

    api.delete_branch(repo, repo_type="dataset", branch="dev")
    api.delete_branch(repo, repo_type="dataset", branch="feature/nested-name")
    branches, _, _ = _refs(api, repo)
    assert set(branches) == {"main", "from-c1", "from-short"}
    with pytest.raises(RevisionNotFoundError):
        api.dataset_info(repo, revision="dev")


def test_duplicate_branch(api, repo):
    repo, (_, c1, head) = repo
    api.create_branch(repo, repo_type="dataset", branch="dev", revision=c1)
    with pytest.raises(HfHubHTTPError) as err:
        api.create_branch(repo, repo_type="dataset", branch="dev")
    assert err.value.response.status_code == 409
    with pytest.raises(HfHubHTTPError) as err:
        api.create_branch(repo, repo_type="dataset", branch="main")
    assert err.value.response.status_code == 409
    api.create_branch(repo, repo_type="dataset", branch="dev", exist_ok=True)
    branches, _, _ = _refs(api, repo)
    assert branches["dev"] == ("refs/heads/dev", c1)  # exist_ok does not move it
    assert branches["main"] == ("refs/heads/main", head)


def test_branch_errors(api, repo):
    repo, (_, _, head) = repo
    with pytest.raises(RevisionNotFoundError):
        api.create_branch(repo, repo_type="dataset", branch="x", revision="no-such-rev")
    with pytest.raises(HfHubHTTPError):
        api.delete_branch(repo, repo_type="dataset", branch="no-such-branch")
    with pytest.raises(HfHubHTTPError) as err:
        api.delete_branch(repo, repo_type="dataset", branch="main")
    assert 400 <= err.value.response.status_code < 500
    branches, _, _ = _refs(api, repo)
    assert branches == {"main": ("refs/heads/main", head)}


def test_create_and_delete_tag(api, repo, cache_dir):
    repo, (initial, c1, head) = repo
    api.create_tag(repo, repo_type="dataset", tag="v1.0", tag_message="first release")
    api.create_tag(repo, repo_type="dataset", tag="v0.1", revision=c1)
    api.create_tag(repo, repo_type="dataset", tag="v0.0", revision=initial[:8])
    api.create_branch(repo, repo_type="dataset", branch="dev", revision=c1)
    api.create_tag(repo, repo_type="dataset", tag="on-dev", revision="dev")
    _, tags, _ = _refs(api, repo)
    assert tags == {
        "v1.0": ("refs/tags/v1.0", head),
        "v0.1": ("refs/tags/v0.1", c1),
        "v0.0": ("refs/tags/v0.0", initial),
        "on-dev": ("refs/tags/on-dev", c1),
    }
    # Tags resolve everywhere a revision is accepted.
    assert api.dataset_info(repo, revision="v0.1").sha == c1
    path = hf_hub_download(repo, "v.txt", repo_type="dataset", revision="v0.1", cache_dir=cache_dir)
    assert open(path, "rb").read() == b"1\n"
    assert [c.commit_id for c in api.list_repo_commits(repo, repo_type="dataset", revision="v0.1")] == [c1, initial]

    api.delete_tag(repo, repo_type="dataset", tag="v0.1")
    _, tags, _ = _refs(api, repo)
    assert set(tags) == {"v1.0", "v0.0", "on-dev"}
    with pytest.raises(RevisionNotFoundError):
        api.dataset_info(repo, revision="v0.1")
    # Deleting a tag leaves the branch of the same commit alone.
    branches, _, _ = _refs(api, repo)
    assert branches["dev"] == ("refs/heads/dev", c1)


def test_duplicate_tag(api, repo):
    repo, (_, c1, head) = repo
    api.create_tag(repo, repo_type="dataset", tag="v1", revision=c1)
    with pytest.raises(HfHubHTTPError) as err:
        api.create_tag(repo, repo_type="dataset", tag="v1")
    assert err.value.response.status_code == 409
    api.create_tag(repo, repo_type="dataset", tag="v1", exist_ok=True)
    _, tags, _ = _refs(api, repo)
    assert tags == {"v1": ("refs/tags/v1", c1)}


def test_tag_errors(api, repo):
    repo, _ = repo
    with pytest.raises(RevisionNotFoundError):
        api.create_tag(repo, repo_type="dataset", tag="v9", revision="no-such-rev")
    with pytest.raises(RevisionNotFoundError):
        api.delete_tag(repo, repo_type="dataset", tag="no-such-tag")
    _, tags, _ = _refs(api, repo)
    assert tags == {}


def test_branch_and_tag_with_same_name(api, repo):
    repo, (_, c1, head) = repo
    api.create_tag(repo, repo_type="dataset", tag="release", revision=c1)
    api.create_branch(repo, repo_type="dataset", branch="release")
    branches, tags, _ = _refs(api, repo)
    assert branches["release"] == ("refs/heads/release", head)
    assert tags["release"] == ("refs/tags/release", c1)
