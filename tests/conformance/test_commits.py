"""create_commit: deletes, parent_commit (412), create_pr; list_repo_commits.

hub-api.md §6, §13.1 items 6 and 14, §13.2.
"""

import re

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationCopy, CommitOperationDelete, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RevisionNotFoundError

from hubtest import PAGE_SIZE, deterministic_bytes

HEX40 = re.compile(r"^[0-9a-f]{40}$")

BASE_FILES = {
    "a.txt": b"a\n",
    "b.txt": b"b\n",
    "folder/x.txt": b"x\n",
    "folder/sub/y.txt": b"y\n",
    "folder/sub/w.bin": deterministic_bytes(300, "w.bin"),
    "other/z.txt": b"z\n",
    "other/dir/q.txt": b"q\n",
    "folderish.txt": b"a sibling whose name starts like `folder`\n",
}


def _add_all(files):
    return [CommitOperationAdd(path_in_repo=p, path_or_fileobj=d) for p, d in files.items()]


@pytest.fixture
def repo(api, name):
    repo = name()
    api.create_repo(repo)
    return repo


def test_create_commit_returns_commit_info(api, hub, repo):
    ops = _add_all(BASE_FILES)
    info = api.create_commit(repo, ops, commit_message="add base files", commit_description="the body")
    assert HEX40.match(info.oid)
    assert info.commit_url == f"{hub.url}/{repo}/commit/{info.oid}"
    assert info.pr_url is None
    assert api.model_info(repo).sha == info.oid
    assert sorted(api.list_repo_files(repo)) == sorted([*BASE_FILES, ".gitattributes"])
    # The server decided regular vs LFS per file (.gitattributes tracks *.bin).
    modes = {op.path_in_repo: op._upload_mode for op in ops}
    assert modes["folder/sub/w.bin"] == "lfs"
    assert modes["a.txt"] == "regular"
    [last, *_] = api.list_repo_commits(repo)
    assert last.commit_id == info.oid
    assert last.title == "add base files"
    assert "the body" in last.message


def test_delete_file_and_folder(api, repo, cache_dir):
    base = api.create_commit(repo, _add_all(BASE_FILES), commit_message="base")
    info = api.create_commit(
        repo,
        [
            CommitOperationDelete("a.txt"),
            CommitOperationDelete("folder/", is_folder=True),
            CommitOperationDelete("other/dir"),  # deletedFile on a directory removes it (§6)
        ],
        commit_message="deletes",
        parent_commit=base.oid,
    )
    assert info.oid != base.oid
    assert sorted(api.list_repo_files(repo)) == [".gitattributes", "b.txt", "folderish.txt", "other/z.txt"]
    # History keeps the deleted files.
    assert open(hf_hub_download(repo, "folder/sub/y.txt", revision=base.oid, cache_dir=cache_dir), "rb").read() == b"y\n"
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo, "folder/sub/y.txt", cache_dir=cache_dir)


def test_delete_folder_without_trailing_slash(api, repo):
    api.create_commit(repo, _add_all(BASE_FILES), commit_message="base")
    api.create_commit(repo, [CommitOperationDelete("folder", is_folder=True)], commit_message="rm folder")
    assert sorted(api.list_repo_files(repo)) == sorted(
        [".gitattributes", "a.txt", "b.txt", "folderish.txt", "other/z.txt", "other/dir/q.txt"]
    )


def test_delete_missing_file_is_entry_not_found(api, repo):
    head = api.create_commit(repo, _add_all(BASE_FILES), commit_message="base").oid
    with pytest.raises(EntryNotFoundError):
        api.create_commit(repo, [CommitOperationDelete("no-such-file.txt")], commit_message="rm missing")
    assert api.model_info(repo).sha == head


def test_add_and_delete_in_one_commit_and_overwrite(api, repo, cache_dir):
    api.create_commit(repo, _add_all(BASE_FILES), commit_message="base")
    api.create_commit(
        repo,
        [
            CommitOperationAdd("a.txt", b"a, version 2\n"),
            CommitOperationDelete("b.txt"),
            CommitOperationAdd("new/n.txt", b"n\n"),
        ],
        commit_message="mixed",
    )
    files = set(api.list_repo_files(repo))
    assert "b.txt" not in files and "new/n.txt" in files
    assert open(hf_hub_download(repo, "a.txt", cache_dir=cache_dir), "rb").read() == b"a, version 2\n"


def test_parent_commit(api, repo):
    first = api.create_commit(repo, [CommitOperationAdd("one.txt", b"1\n")], commit_message="one")
    # Full and abbreviated parent both match the head.
    second = api.create_commit(
        repo, [CommitOperationAdd("two.txt", b"2\n")], commit_message="two", parent_commit=first.oid
    )
    third = api.create_commit(
        repo, [CommitOperationAdd("three.txt", b"3\n")], commit_message="three", parent_commit=second.oid[:10]
    )
    assert [c.commit_id for c in api.list_repo_commits(repo)][:3] == [third.oid, second.oid, first.oid]


def test_stale_parent_commit_is_412_and_changes_nothing(api, repo):
    first = api.create_commit(repo, [CommitOperationAdd("one.txt", b"1\n")], commit_message="one")
    second = api.create_commit(repo, [CommitOperationAdd("two.txt", b"2\n")], commit_message="two")
    files = sorted(api.list_repo_files(repo))

    with pytest.raises(HfHubHTTPError) as err:
        api.create_commit(
            repo,
            [CommitOperationAdd("three.txt", b"3\n"), CommitOperationDelete("one.txt")],
            commit_message="stale",
            parent_commit=first.oid,
        )
    assert err.value.response.status_code == 412
    assert api.model_info(repo).sha == second.oid
    assert sorted(api.list_repo_files(repo)) == files
    assert len(api.list_repo_commits(repo)) == 3


def test_commit_to_unknown_branch(api, repo):
    with pytest.raises(RevisionNotFoundError):
        api.create_commit(repo, [CommitOperationAdd("x.txt", b"x\n")], commit_message="x", revision="no-such-branch")


def test_commit_to_branch(api, repo):
    main_head = api.create_commit(repo, [CommitOperationAdd("m.txt", b"m\n")], commit_message="m").oid
    api.create_branch(repo, branch="dev")
    dev = api.create_commit(repo, [CommitOperationAdd("d.txt", b"d\n")], commit_message="d", revision="dev")
    assert api.model_info(repo).sha == main_head
    assert api.model_info(repo, revision="dev").sha == dev.oid
    assert "d.txt" in api.list_repo_files(repo, revision="dev")
    assert "d.txt" not in api.list_repo_files(repo)
    assert [c.commit_id for c in api.list_repo_commits(repo, revision="dev")][:2] == [dev.oid, main_head]


def test_create_pr(api, hub, repo, cache_dir):
    base = api.create_commit(repo, [CommitOperationAdd("base.txt", b"base\n")], commit_message="base")
    pr = api.create_commit(
        repo, [CommitOperationAdd("proposal.txt", b"p1\n")], commit_message="proposal", create_pr=True
    )
    assert pr.pr_url == f"{hub.url}/{repo}/discussions/1"
    assert pr.pr_revision == "refs/pr/1"
    assert pr.pr_num == 1
    assert HEX40.match(pr.oid)
    # main did not move.
    assert api.model_info(repo).sha == base.oid
    assert "proposal.txt" not in api.list_repo_files(repo)

    refs = api.list_repo_refs(repo, include_pull_requests=True)
    assert [(r.name, r.ref, r.target_commit) for r in refs.pull_requests] == [("1", "refs/pr/1", pr.oid)]
    assert refs.pull_requests is not None
    assert api.list_repo_refs(repo).pull_requests is None

    # Later commits to refs/pr/1 (sent as refs%2Fpr%2F1) work.
    follow = api.create_commit(
        repo, [CommitOperationAdd("proposal.txt", b"p2\n")], commit_message="update", revision="refs/pr/1"
    )
    assert follow.pr_url is None
    assert api.model_info(repo, revision="refs/pr/1").sha == follow.oid
    assert [c.commit_id for c in api.list_repo_commits(repo, revision="refs/pr/1")][:3] == [
        follow.oid,
        pr.oid,
        base.oid,
    ]
    path = hf_hub_download(repo, "proposal.txt", revision="refs/pr/1", cache_dir=cache_dir)
    assert open(path, "rb").read() == b"p2\n"
    assert sorted(api.list_repo_files(repo, revision="refs/pr/1")) == [".gitattributes", "base.txt", "proposal.txt"]

    # A second PR gets number 2 and starts from main again.
    pr2 = api.create_commit(repo, [CommitOperationDelete("base.txt")], commit_message="drop base", create_pr=True)
    assert pr2.pr_url == f"{hub.url}/{repo}/discussions/2"
    assert sorted(api.list_repo_files(repo, revision="refs/pr/2")) == [".gitattributes"]
    assert api.model_info(repo).sha == base.oid


def test_create_pr_with_lfs_file(api, repo, cache_dir):
    data = deterministic_bytes(4096, "pr-lfs")
    pr = api.create_commit(repo, [CommitOperationAdd("w.bin", data)], commit_message="lfs pr", create_pr=True)
    assert pr.pr_revision == "refs/pr/1"
    assert open(hf_hub_download(repo, "w.bin", revision="refs/pr/1", cache_dir=cache_dir), "rb").read() == data


def test_list_repo_commits_over_pages(api, repo):
    initial = api.list_repo_commits(repo)[0]
    ids = [initial.commit_id]
    for i in range(2 * PAGE_SIZE + 1):
        ids.append(api.create_commit(repo, [CommitOperationAdd(f"f{i}.txt", b"%d\n" % i)], commit_message=f"c{i}").oid)
    commits = api.list_repo_commits(repo)
    assert len(commits) > PAGE_SIZE  # really paginated: the server was started with --page-size 3
    assert [c.commit_id for c in commits] == ids[::-1]
    assert [c.title for c in commits] == [f"c{i}" for i in range(2 * PAGE_SIZE, -1, -1)] + ["initial commit"]
    assert commits[-1].authors == ["system"]
    dates = [c.created_at for c in commits]
    assert dates == sorted(dates, reverse=True)
    assert all(c.created_at.tzinfo is not None for c in commits)
    # From an older revision, history starts there.
    assert [c.commit_id for c in api.list_repo_commits(repo, revision=ids[2])] == ids[2::-1]


def test_list_repo_commits_formatted(api, repo):
    api.create_commit(repo, [CommitOperationAdd("f.txt", b"f\n")], commit_message="formatted title")
    commits = api.list_repo_commits(repo, formatted=True)
    assert commits[0].title == "formatted title"
    assert commits[0].formatted_title is not None


def test_copy_regular_and_lfs_files(api, repo, cache_dir):
    weights = deterministic_bytes(5000, "copy-weights")
    api.create_commit(
        repo,
        [CommitOperationAdd("src/a.txt", b"copy me\n"), CommitOperationAdd("src/w.bin", weights)],
        commit_message="sources",
    )
    # Copies look up paths-info, re-send regular files, and send LFS ones as `lfsFile` without size.
    api.create_commit(
        repo,
        [
            CommitOperationCopy("src/a.txt", "dst/a.txt"),
            CommitOperationCopy("src/w.bin", "dst/w.bin"),
        ],
        commit_message="copies",
    )
    files = set(api.list_repo_files(repo))
    assert {"src/a.txt", "src/w.bin", "dst/a.txt", "dst/w.bin"} <= files
    tree = {e.path: e for e in api.list_repo_tree(repo, recursive=True) if hasattr(e, "blob_id")}
    assert tree["dst/w.bin"].lfs.sha256 == tree["src/w.bin"].lfs.sha256
    assert tree["dst/w.bin"].size == len(weights)
    assert tree["dst/a.txt"].blob_id == tree["src/a.txt"].blob_id
    assert open(hf_hub_download(repo, "dst/w.bin", cache_dir=cache_dir), "rb").read() == weights
    assert open(hf_hub_download(repo, "dst/a.txt", cache_dir=cache_dir), "rb").read() == b"copy me\n"


def test_invalid_readme_metadata_is_refused(api, repo):
    head = api.model_info(repo).sha
    with pytest.raises(ValueError, match="Invalid metadata in README.md"):
        api.create_commit(
            repo,
            [CommitOperationAdd("README.md", b"---\nlicense: [unclosed\n---\n# x\n")],
            commit_message="bad card",
        )
    assert api.model_info(repo).sha == head
    # A valid card goes through (validate-yaml answers {"errors": [], "warnings": []}).
    api.create_commit(
        repo, [CommitOperationAdd("README.md", b"---\nlicense: mit\n---\n# ok\n")], commit_message="good card"
    )
    assert "README.md" in api.list_repo_files(repo)


def test_create_pr_from_parent_commit(api, repo):
    old = api.create_commit(repo, [CommitOperationAdd("v.txt", b"old\n")], commit_message="old").oid
    api.create_commit(repo, [CommitOperationAdd("v.txt", b"new\n"), CommitOperationAdd("n.txt", b"n\n")], commit_message="new")
    pr = api.create_commit(
        repo, [CommitOperationAdd("p.txt", b"p\n")], commit_message="pr on old", create_pr=True, parent_commit=old
    )
    assert pr.pr_revision == "refs/pr/1"
    assert [c.commit_id for c in api.list_repo_commits(repo, revision="refs/pr/1")][:2] == [pr.oid, old]
    assert sorted(api.list_repo_files(repo, revision="refs/pr/1")) == [".gitattributes", "p.txt", "v.txt"]


def test_concurrent_commits_with_the_same_parent(api, repo):
    """Parent checks are atomic: of N commits racing on one parent, exactly one lands."""
    from concurrent.futures import ThreadPoolExecutor

    head = api.create_commit(repo, [CommitOperationAdd("start.txt", b"s\n")], commit_message="start").oid

    def attempt(i):
        try:
            return api.create_commit(
                repo, [CommitOperationAdd(f"race-{i}.txt", b"%d\n" % i)], commit_message=f"race {i}", parent_commit=head
            ).oid
        except HfHubHTTPError as err:
            return err.response.status_code

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(8)))
    winners = [r for r in results if isinstance(r, str)]
    assert len(winners) == 1, results
    assert sorted(r for r in results if not isinstance(r, str)) == [412] * 7
    assert api.model_info(repo).sha == winners[0]
    assert len([f for f in api.list_repo_files(repo) if f.startswith("race-")]) == 1


def test_concurrent_commits_to_one_branch_are_serialised(api, repo):
    from concurrent.futures import ThreadPoolExecutor

    before = len(api.list_repo_commits(repo))

    def commit(i):
        return api.create_commit(repo, [CommitOperationAdd(f"c/{i}.txt", b"%d\n" % i)], commit_message=f"c{i}").oid

    with ThreadPoolExecutor(8) as pool:
        oids = list(pool.map(commit, range(16)))
    assert len(set(oids)) == 16
    commits = api.list_repo_commits(repo)
    assert len(commits) == before + 16
    assert set(oids) <= {c.commit_id for c in commits}
    assert sorted(f for f in api.list_repo_files(repo) if f.startswith("c/")) == sorted(f"c/{i}.txt" for i in range(16))
