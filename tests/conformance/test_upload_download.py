"""upload_folder, LFS (basic and multipart), hf_hub_download and snapshot_download.

hub-api.md §5, §7, §13.1 items 5, 15 and 16.
"""

import urllib.parse

import pytest
from huggingface_hub import hf_hub_download, snapshot_download
from huggingface_hub.errors import EntryNotFoundError, RevisionNotFoundError

from hubtest import (
    WRITE_TOKEN,
    LfsSpy,
    deterministic_bytes,
    git_blob_sha1,
    lfs_pointer,
    raw_request,
    read_tree,
    sha256,
    write_tree,
)

def _big_text() -> bytes:
    # Over 10 MB (and over 10 MiB) of plain text: LFS by size alone (no LFS extension, no binary sample).
    line = b"line %08d of a large plain-text file that only the size rule sends to LFS\n"
    out = b"".join(line % i for i in range(11 * 1024 * 1024 // len(line)))
    assert len(out) > 10.5 * 1024 * 1024
    return out


FILES = {
    "README.md": b"---\nlicense: mit\ntags:\n- conformance\n---\n# Conformance\n\nUploaded by the suite.\n",
    "config.json": b'{"hidden_size": 8, "layers": 2}\n',
    "nested/a.txt": b"a\n",
    "nested/deep/dir/notes.txt": b"deep notes\n",
    "unicode/h\u00e9llo w\u00f6rld \u2713.txt": "\u00fcn\u00efc\u00f6d\u00e9 content \u2603\n".encode(),
    "empty.txt": b"",
    # LFS by the initial .gitattributes (*.bin), although tiny.
    "weights/small.bin": deterministic_bytes(1024, "small.bin"),
    # LFS by its binary sample (NUL bytes), with an extension .gitattributes does not track.
    "blobs/data.raw": b"\x00\x01\x02\x03" * 750,
    # LFS by size (> 10 MB) ...
    "big/corpus.txt": _big_text(),
    # ... and a large random binary.
    "big/model.safetensors": deterministic_bytes(11 * 1000 * 1000, "model.safetensors"),
}
LFS_PATHS = {"weights/small.bin", "blobs/data.raw", "big/corpus.txt", "big/model.safetensors"}
REGULAR_PATHS = set(FILES) - LFS_PATHS


@pytest.fixture(scope="module")
def uploaded(api, tmp_path_factory):
    """One repo with FILES uploaded by a single upload_folder; the LFS transfers it made."""
    folder = tmp_path_factory.mktemp("upload-src")
    write_tree(folder, FILES)
    repo = "alice/upload-folder"
    api.create_repo(repo)
    with pytest.MonkeyPatch.context() as mp:
        spy = LfsSpy().install(mp)
        info = api.upload_folder(repo_id=repo, folder_path=folder, commit_message="conformance upload")
    return {"repo": repo, "folder": folder, "commit": info, "spy": spy}


def test_upload_folder_makes_one_commit(api, hub, uploaded):
    repo, commit = uploaded["repo"], uploaded["commit"]
    head = api.model_info(repo).sha
    assert commit.oid == head
    assert commit.commit_url == f"{hub.url}/{repo}/commit/{head}"
    assert commit.repo_url.repo_id == repo
    commits = api.list_repo_commits(repo)
    assert [c.title for c in commits] == ["conformance upload", "initial commit"]
    assert commits[0].commit_id == head


def test_upload_folder_lfs_transfers(uploaded):
    spy = uploaded["spy"]
    # Every LFS file went to LFS storage exactly once, in one part (default chunk size is large);
    # regular files never did.
    assert sorted(path for path, *_ in spy.uploads) == sorted(LFS_PATHS)
    assert all(kind == "basic" for _, kind, _, _ in spy.uploads)


def test_tree_entries_are_git_faithful(api, uploaded):
    entries = {e.path: e for e in api.list_repo_tree(uploaded["repo"], recursive=True) if hasattr(e, "blob_id")}
    assert set(entries) == set(FILES) | {".gitattributes"}
    for path, data in FILES.items():
        entry = entries[path]
        assert entry.size == len(data), path
        assert entry.xet_hash is None, path
        if path in LFS_PATHS:
            assert entry.lfs is not None, f"{path} should be an LFS file"
            assert entry.lfs.sha256 == sha256(data), path
            assert entry.lfs.size == len(data), path
            assert entry.lfs.pointer_size == len(lfs_pointer(data)), path
            assert entry.blob_id == git_blob_sha1(lfs_pointer(data)), path
        else:
            assert entry.lfs is None, f"{path} should be a regular file"
            assert entry.blob_id == git_blob_sha1(data), path
    folders = {e.path for e in api.list_repo_tree(uploaded["repo"], recursive=True) if not hasattr(e, "blob_id")}
    assert folders == {"nested", "nested/deep", "nested/deep/dir", "unicode", "weights", "blobs", "big"}


def test_hf_hub_download_byte_exact(uploaded, cache_dir):
    repo, commit = uploaded["repo"], uploaded["commit"].oid
    for path, data in FILES.items():
        got = open(hf_hub_download(repo, path, cache_dir=cache_dir), "rb").read()
        assert got == data, path
    # Pinned to the commit (served from the cache now) and, in a new cache, fetched by commit.
    for path in ("unicode/h\u00e9llo w\u00f6rld \u2713.txt", "big/corpus.txt", "empty.txt"):
        assert open(hf_hub_download(repo, path, revision=commit, cache_dir=cache_dir), "rb").read() == FILES[path]
        other = cache_dir.parent / "by-commit"
        assert open(hf_hub_download(repo, path, revision=commit, cache_dir=other), "rb").read() == FILES[path]


def test_hf_hub_download_to_local_dir(uploaded, tmp_path):
    target = tmp_path / "local"
    for path in ("nested/deep/dir/notes.txt", "weights/small.bin"):
        hf_hub_download(uploaded["repo"], path, local_dir=target)
    assert read_tree(target) == {p: FILES[p] for p in ("nested/deep/dir/notes.txt", "weights/small.bin")}


def test_snapshot_download_byte_exact(api, uploaded, cache_dir):
    folder = snapshot_download(uploaded["repo"], cache_dir=cache_dir)
    got = read_tree(folder)
    gitattributes = got.pop(".gitattributes")
    assert got == FILES
    assert b"filter=lfs" in gitattributes
    # And at an explicit commit, into a plain folder.
    local = cache_dir.parent / "snapshot-local"
    snapshot_download(uploaded["repo"], revision=uploaded["commit"].oid, local_dir=local)
    got = read_tree(local)
    got.pop(".gitattributes")
    assert got == FILES


def test_download_missing_file_or_revision(api, uploaded, cache_dir):
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(uploaded["repo"], "no/such/file.txt", cache_dir=cache_dir)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(uploaded["repo"], "config.json", revision="no-such-branch", cache_dir=cache_dir)
    assert api.file_exists(uploaded["repo"], "no/such/file.txt") is False
    assert api.file_exists(uploaded["repo"], "unicode/h\u00e9llo w\u00f6rld \u2713.txt") is True


def test_resolve_wire_headers(hub, uploaded):
    """The HEAD/GET contract hf_hub_download relies on (hub-api.md §7.2)."""
    repo, head = uploaded["repo"], uploaded["commit"].oid
    base = f"{hub.url}/{repo}/resolve/main/"

    regular = FILES["config.json"]
    resp = raw_request("HEAD", base + "config.json", token=WRITE_TOKEN)
    assert resp.status == 200
    assert resp.headers["x-repo-commit"] == head
    etag = resp.headers.get("x-linked-etag") or resp.headers["etag"]
    assert etag.removeprefix("W/").strip('"') == git_blob_sha1(regular)
    assert int(resp.headers.get("x-linked-size") or resp.headers["content-length"]) == len(regular)
    assert not any(h.startswith("x-xet-") for h in resp.headers)

    lfs = FILES["big/model.safetensors"]
    resp = raw_request("HEAD", base + "big/model.safetensors", token=WRITE_TOKEN)
    assert resp.status in (200, 302, 307)
    assert resp.headers["x-repo-commit"] == head
    assert resp.headers["x-linked-etag"].removeprefix("W/").strip('"') == sha256(lfs)
    assert int(resp.headers["x-linked-size"]) == len(lfs)

    missing = raw_request("HEAD", base + "nope.txt", token=WRITE_TOKEN)
    assert missing.status == 404
    assert missing.headers["x-error-code"] == "EntryNotFound"
    assert missing.headers["x-repo-commit"] == head

    # Single ranges: 206 with Content-Range (what the JS client and resumed downloads use, §7.1).
    for header, (start, end) in (("bytes=10-19", (10, 19)), ("bytes=5000-", (5000, len(lfs) - 1))):
        ranged = raw_request("GET", base + "big/model.safetensors", token=WRITE_TOKEN, headers={"Range": header})
        assert ranged.status == 206, header
        assert ranged.headers["content-range"] == f"bytes {start}-{end}/{len(lfs)}"
        assert ranged.body == lfs[start : end + 1]

    quoted = base + urllib.parse.quote("unicode/h\u00e9llo w\u00f6rld \u2713.txt")
    resp = raw_request("GET", quoted, token=WRITE_TOKEN)
    assert resp.status == 200
    assert resp.body == FILES["unicode/h\u00e9llo w\u00f6rld \u2713.txt"]


def test_unchanged_reupload_makes_no_commit(api, uploaded, lfs_spy):
    repo = uploaded["repo"]
    before = api.list_repo_commits(repo)
    info = api.upload_folder(repo_id=repo, folder_path=uploaded["folder"], commit_message="nothing new")
    assert info.oid == before[0].commit_id
    assert [c.commit_id for c in api.list_repo_commits(repo)] == [c.commit_id for c in before]
    # LFS objects the Hub already has are not sent again.
    assert lfs_spy.uploads == []


def test_upload_folder_with_path_and_delete_patterns(api, name, tmp_path):
    repo = name()
    api.create_repo(repo, repo_type="dataset")
    api.upload_folder(
        repo_id=repo,
        repo_type="dataset",
        folder_path=_tree(tmp_path / "v1", {"a.log": b"old log\n", "keep.txt": b"keep\n"}),
        path_in_repo="logs",
    )
    api.upload_folder(
        repo_id=repo,
        repo_type="dataset",
        folder_path=_tree(tmp_path / "v2", {"b.txt": b"new\n"}),
        path_in_repo="logs",
        delete_patterns=["*.log"],
    )
    assert sorted(api.list_repo_files(repo, repo_type="dataset")) == [".gitattributes", "logs/b.txt", "logs/keep.txt"]


def _tree(root, files):
    write_tree(root, files)
    return root


# --- multipart ------------------------------------------------------------------------------

MIB = 1024 * 1024


def test_multipart_upload(start_hub, tmp_path, lfs_spy):
    from huggingface_hub import HfApi

    server = start_hub(["--multipart-chunk-size", str(MIB)])
    api = HfApi(endpoint=server.url, token=WRITE_TOKEN)
    repo = "alice/multipart"
    api.create_repo(repo)
    files = {
        "weights/model.bin": deterministic_bytes(int(3.5 * MIB), "multipart-3.5MiB"),  # 4 parts
        "weights/exact.bin": deterministic_bytes(2 * MIB, "multipart-2MiB"),  # exactly 2 parts
        "weights/small.bin": deterministic_bytes(MIB // 2, "multipart-small"),  # one basic PUT
        "config.json": b"{}\n",
    }
    folder = _tree(tmp_path / "src", files)
    info = api.upload_folder(repo_id=repo, folder_path=folder)

    assert lfs_spy.by_path() == {
        "weights/model.bin": ("multipart", 4, MIB),
        "weights/exact.bin": ("multipart", 2, MIB),
        "weights/small.bin": ("basic", 1, None),
    }
    tree = {e.path: e for e in api.list_repo_tree(repo, recursive=True) if hasattr(e, "blob_id")}
    for path in ("weights/model.bin", "weights/exact.bin", "weights/small.bin"):
        assert tree[path].lfs.sha256 == sha256(files[path])
        assert tree[path].size == len(files[path])

    cache = tmp_path / "cache"
    for path, data in files.items():
        assert open(hf_hub_download(repo, path, endpoint=server.url, cache_dir=cache), "rb").read() == data
    got = read_tree(snapshot_download(repo, endpoint=server.url, cache_dir=tmp_path / "cache2"))
    got.pop(".gitattributes")
    assert got == files

    # The same content under a new path: the Hub already has the object, nothing is uploaded.
    lfs_spy.uploads.clear()
    copy = _tree(tmp_path / "copy", {"copies/model-again.bin": files["weights/model.bin"]})
    second = api.upload_folder(repo_id=repo, folder_path=copy)
    assert second.oid != info.oid
    assert lfs_spy.uploads == []
    got = hf_hub_download(repo, "copies/model-again.bin", endpoint=server.url, cache_dir=cache)
    assert open(got, "rb").read() == files["weights/model.bin"]


@pytest.mark.parametrize("repo_type, namespace", [("dataset", "acme"), ("space", "alice")])
def test_other_repo_types_round_trip(api, tmp_path, repo_type, namespace):
    """Datasets and Spaces use the `datasets/` and `spaces/` prefixes on resolve and LFS routes."""
    repo = f"{namespace}/round-trip-{repo_type}"
    api.create_repo(repo, repo_type=repo_type, space_sdk="static" if repo_type == "space" else None)
    files = {
        "index.html": b"<html>hi</html>\n",
        "data/train/part-0.parquet": deterministic_bytes(70_000, f"{repo_type}-parquet"),
        "data/\u00fcnic\u00f6de.txt": "\u00fc\n".encode(),
        "data/empty.txt": b"",
    }
    with pytest.MonkeyPatch.context() as mp:
        spy = LfsSpy().install(mp)
        api.upload_folder(repo_id=repo, repo_type=repo_type, folder_path=_tree(tmp_path / "src", files))
    assert [path for path, *_ in spy.uploads] == ["data/train/part-0.parquet"]
    got = read_tree(snapshot_download(repo, repo_type=repo_type, cache_dir=tmp_path / "c1"))
    got.pop(".gitattributes")
    assert got == files
    path = hf_hub_download(repo, "data/train/part-0.parquet", repo_type=repo_type, cache_dir=tmp_path / "c2")
    assert open(path, "rb").read() == files["data/train/part-0.parquet"]
