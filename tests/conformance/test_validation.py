"""Strict request validation at the wire level: Hub-shaped 4xx, nothing stored (issue 2, hub-api.md §2.3, §6).

huggingface_hub validates most of these client-side, so the requests are sent raw.
"""

import base64
import json

import pytest
from huggingface_hub import CommitOperationAdd

from hubtest import WRITE_TOKEN, raw_request


def _ndjson(*lines) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def _file(path, data: bytes):
    return {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"}}


HEADER = {"key": "header", "value": {"summary": "bad commit"}}

BAD_COMMITS = {
    "malformed-line": _ndjson(HEADER, _file("ok.txt", b"ok\n")) + b'{"key": "file", "value": \n',
    "unknown-key": _ndjson(HEADER, {"key": "copy", "value": {"path": "x"}}),
    "no-header": _ndjson(_file("ok.txt", b"ok\n")),
    "dotdot-path": _ndjson(HEADER, _file("ok.txt", b"ok\n"), _file("a/../../escape.txt", b"x\n")),
    "leading-slash": _ndjson(HEADER, _file("/abs.txt", b"x\n")),
    "unknown-lfs-oid": _ndjson(
        HEADER, {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": "ab" * 32, "size": 10}}
    ),
    # Over 10 MB and over 10 MiB, so whichever the threshold is read as.
    "regular-over-10MB": _ndjson(HEADER, _file("huge.txt", b"x" * (11 * 1024 * 1024))),
    "bad-base64": _ndjson(
        HEADER, {"key": "file", "value": {"path": "b.txt", "content": "!!not base64!!", "encoding": "base64"}}
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_COMMITS))
def test_bad_commit_is_refused_and_changes_nothing(api, hub, name, case):
    repo = name(f"validation-{case}")
    api.create_repo(repo)
    api.create_commit(repo, [CommitOperationAdd("keep.txt", b"keep\n")], commit_message="base")
    head = api.model_info(repo).sha
    resp = raw_request(
        "POST",
        f"{hub.url}/api/models/{repo}/commit/main",
        token=WRITE_TOKEN,
        body=BAD_COMMITS[case],
        content_type="application/x-ndjson",
    )
    assert 400 <= resp.status < 500, (resp.status, resp.body[:200])
    assert resp.headers.get("x-error-message"), resp.headers
    assert isinstance(resp.json().get("error"), str)
    assert api.model_info(repo).sha == head
    assert sorted(api.list_repo_files(repo)) == [".gitattributes", "keep.txt"]
