"""list_repo_files and list_repo_tree over several pages (hub-api.md §1.5, §4.1, §13.1 items 12-13).

The main server runs with `--page-size 3`, so every listing here needs several pages.
"""

import urllib.parse

import pytest
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import EntryNotFoundError, RevisionNotFoundError

from hubtest import PAGE_SIZE, WRITE_TOKEN, git_blob_sha1, next_link, raw_request

FILES = {
    "README.md": b"# listing\n",
    "top1.txt": b"1\n",
    "top2.txt": b"2\n",
    "src/main.py": b"print('hi')\n",
    "src/util.py": b"pass\n",
    "src/pkg/__init__.py": b"",
    "src/pkg/mod.py": b"x = 1\n",
    "src/pkg/deep/er/leaf.txt": b"leaf\n",
    "data/a.csv": b"a,b\n1,2\n",
    "data/b.csv": b"a,b\n3,4\n",
    "data/c.csv": b"a,b\n5,6\n",
    "data/d.csv": b"a,b\n7,8\n",
    "space dir/file with spaces.txt": b"spaces\n",
}
DIRS = {"src", "src/pkg", "src/pkg/deep", "src/pkg/deep/er", "data", "space dir"}


@pytest.fixture(scope="module")
def repo(api):
    repo = "alice/listing"
    api.create_repo(repo)
    api.create_commit(
        repo, [CommitOperationAdd(p, d) for p, d in FILES.items()], commit_message="many files"
    )
    return repo


def test_list_repo_files(api, repo):
    files = api.list_repo_files(repo)
    assert len(files) > PAGE_SIZE
    assert len(files) == len(set(files))
    assert sorted(files) == sorted([*FILES, ".gitattributes"])


def test_list_repo_tree_recursive(api, repo):
    entries = list(api.list_repo_tree(repo, recursive=True))
    files = {e.path: e for e in entries if hasattr(e, "blob_id")}
    dirs = {e.path for e in entries if not hasattr(e, "blob_id")}
    assert len(entries) == len(files) + len(dirs)  # no duplicates across pages
    assert set(files) == set(FILES) | {".gitattributes"}
    assert dirs == DIRS
    for path, data in FILES.items():
        assert files[path].size == len(data)
        assert files[path].blob_id == git_blob_sha1(data)


def test_list_repo_tree_top_level(api, repo):
    entries = list(api.list_repo_tree(repo))
    assert {(e.path, type(e).__name__) for e in entries} == {
        (".gitattributes", "RepoFile"),
        ("README.md", "RepoFile"),
        ("top1.txt", "RepoFile"),
        ("top2.txt", "RepoFile"),
        ("src", "RepoFolder"),
        ("data", "RepoFolder"),
        ("space dir", "RepoFolder"),
    }
    folder = next(e for e in entries if e.path == "src")
    assert len(folder.tree_id) == 40


def test_list_repo_tree_with_path(api, repo):
    # `src/pkg` goes out as `src%2Fpkg` (hub-api.md §1.2).
    entries = {(e.path, type(e).__name__) for e in api.list_repo_tree(repo, path_in_repo="src/pkg")}
    assert entries == {
        ("src/pkg/__init__.py", "RepoFile"),
        ("src/pkg/mod.py", "RepoFile"),
        ("src/pkg/deep", "RepoFolder"),
    }
    recursive = {e.path for e in api.list_repo_tree(repo, path_in_repo="src", recursive=True)}
    assert recursive == {p for p in FILES if p.startswith("src/")} | {d for d in DIRS if d.startswith("src/")}
    data = [e.path for e in api.list_repo_tree(repo, path_in_repo="data")]
    assert sorted(data) == ["data/a.csv", "data/b.csv", "data/c.csv", "data/d.csv"]
    spaced = [e.path for e in api.list_repo_tree(repo, path_in_repo="space dir")]
    assert spaced == ["space dir/file with spaces.txt"]


def test_list_repo_tree_missing_path_or_revision(api, repo):
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree(repo, path_in_repo="no/such/dir"))
    with pytest.raises(RevisionNotFoundError):
        list(api.list_repo_tree(repo, revision="no-such-branch"))
    with pytest.raises(RevisionNotFoundError):
        api.list_repo_files(repo, revision="no-such-branch")


def test_list_repo_tree_at_older_revision(api, repo):
    old = api.list_repo_commits(repo)[-1].commit_id
    assert [e.path for e in api.list_repo_tree(repo, revision=old, recursive=True)] == [".gitattributes"]
    assert api.list_repo_files(repo, revision=old[:7]) == [".gitattributes"]


def test_tree_pagination_on_the_wire(hub, repo):
    """Link next URLs are absolute, on the server's origin, and carry every query parameter."""
    url = f"{hub.url}/api/models/{repo}/tree/main?recursive=true&expand=false"
    seen, pages = [], 0
    while url:
        assert url.startswith(hub.url + "/"), url
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        assert query.get("recursive", [""])[0].lower() in ("true", "1"), url
        assert query.get("expand", [""])[0].lower() in ("false", "0"), url
        resp = raw_request("GET", url, token=WRITE_TOKEN)
        assert resp.status == 200, resp.body
        page = resp.json()
        assert 0 < len(page) <= PAGE_SIZE
        seen += [e["path"] for e in page]
        pages += 1
        url = next_link(resp.headers)
    assert pages == -(-len(seen) // PAGE_SIZE)
    assert sorted(seen) == sorted(set(FILES) | DIRS | {".gitattributes"})


def test_tree_path_raw_and_escaped_slashes_agree(hub, repo):
    # Python escapes the slashes of the path (src%2Fpkg); the JS client sends them raw (§1.2).
    def listing(path_segment):
        out, url = [], f"{hub.url}/api/models/{repo}/tree/main/{path_segment}?recursive=false&expand=false"
        while url:
            resp = raw_request("GET", url, token=WRITE_TOKEN)
            assert resp.status == 200, (path_segment, resp.body)
            out += [e["path"] for e in resp.json()]
            url = next_link(resp.headers)
        return sorted(out)

    assert listing("src%2Fpkg") == listing("src/pkg") == ["src/pkg/__init__.py", "src/pkg/deep", "src/pkg/mod.py"]


def test_list_repo_tree_expand_last_commit(api, name):
    repo = name()
    api.create_repo(repo)
    first = api.create_commit(
        repo, [CommitOperationAdd("d/one.txt", b"1\n"), CommitOperationAdd("two.txt", b"2\n")], commit_message="first"
    )
    second = api.create_commit(repo, [CommitOperationAdd("two.txt", b"2b\n")], commit_message="second")
    third = api.create_commit(repo, [CommitOperationAdd("d/three.txt", b"3\n")], commit_message="third")
    entries = {e.path: e for e in api.list_repo_tree(repo, recursive=True, expand=True)}
    assert set(entries) == {".gitattributes", "d", "d/one.txt", "d/three.txt", "two.txt"}
    expected = {"d/one.txt": first, "two.txt": second, "d/three.txt": third, "d": third}
    for path, commit in expected.items():
        last = entries[path].last_commit
        assert last is not None, path
        assert (last.oid, last.title) == (commit.oid, commit.commit_message), path
        assert last.date.tzinfo is not None


def test_get_paths_info(api, repo):
    infos = {e.path: e for e in api.get_paths_info(repo, ["top1.txt", "src", "src/pkg/mod.py", "missing.txt"])}
    # Missing paths are skipped silently (§4.2).
    assert set(infos) == {"top1.txt", "src", "src/pkg/mod.py"}
    assert infos["top1.txt"].blob_id == git_blob_sha1(FILES["top1.txt"])
    assert infos["top1.txt"].size == len(FILES["top1.txt"])
    assert infos["src/pkg/mod.py"].blob_id == git_blob_sha1(FILES["src/pkg/mod.py"])
    assert type(infos["src"]).__name__ == "RepoFolder"
    src = next(e for e in api.list_repo_tree(repo) if e.path == "src")
    assert infos["src"].tree_id == src.tree_id
