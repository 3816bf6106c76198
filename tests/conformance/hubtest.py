"""Helpers for the conformance suite: the `hubsync hub serve` process, hashing, file trees.

This module must not import `huggingface_hub` at import time: `conftest.py` imports it before
the environment (HF_HOME, HF_HUB_DISABLE_XET, HF_ENDPOINT, ...) is set, and `huggingface_hub`
reads that environment once, when it is first imported.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import signal
import subprocess
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

USER = "alice"
WRITE_TOKEN = "hf_alice_write_0123456789"
READ_TOKEN = "hf_alice_read_0123456789"
ORG = "acme"

# The main server lists trees and commits three entries a page, so every listing in the suite
# goes over several pages.
PAGE_SIZE = 3

STARTUP_TIMEOUT_S = 30
SHUTDOWN_TIMEOUT_S = 15
LISTENING_RE = re.compile(r"^listening on (http://(127\.0\.0\.1|localhost|\[::1\]):(\d+))$")


def hubsync_bin() -> Path:
    """The binary under test: `HUBSYNC_BIN`, else `target/debug/hubsync` in the repo."""
    raw = os.environ.get("HUBSYNC_BIN")
    path = Path(raw) if raw else REPO_ROOT / "target" / "debug" / "hubsync"
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


class ServerStartError(RuntimeError):
    pass


class HubServer:
    """One `hubsync hub serve` process on port 0 over a data folder.

    `start()` waits for the first stdout line `listening on http://HOST:PORT`; stderr goes to
    `log_path` so a failing test can show it.
    """

    def __init__(self, data_dir: Path, log_path: Path, extra_args: list[str] | None = None):
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None
        self.first_line: str | None = None
        self._stdout_lines: queue.Queue[str | None] = queue.Queue()

    def command(self) -> list[str]:
        return [
            str(hubsync_bin()),
            "hub",
            "serve",
            "--data",
            str(self.data_dir),
            "--bind",
            "127.0.0.1:0",
            "--user",
            USER,
            "--token",
            WRITE_TOKEN,
            "--read-token",
            READ_TOKEN,
            "--org",
            ORG,
            *self.extra_args,
        ]

    def start(self) -> "HubServer":
        binary = hubsync_bin()
        if not binary.is_file():
            raise ServerStartError(f"hubsync binary not found at {binary}; run `cargo build` first or set HUBSYNC_BIN")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        log.write(f"\n=== start: {' '.join(self.command())}\n".encode())
        log.flush()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE_"))}
        env.setdefault("HUBSYNC_LOG", "warn")
        env["NO_COLOR"] = "1"
        self._stdout_lines = queue.Queue()
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            cwd=self.data_dir.parent,
        )
        log.close()
        threading.Thread(target=self._drain_stdout, args=(self.proc, self._stdout_lines), daemon=True).start()
        try:
            line = self._stdout_lines.get(timeout=STARTUP_TIMEOUT_S)
        except queue.Empty:
            self.kill()
            raise ServerStartError(f"no `listening on` line within {STARTUP_TIMEOUT_S}s\n{self.log_tail()}")
        if line is None:
            code = self.proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
            raise ServerStartError(f"server exited with {code} before printing a line\n{self.log_tail()}")
        self.first_line = line
        match = LISTENING_RE.match(line)
        if not match:
            self.kill()
            raise ServerStartError(f"first stdout line is {line!r}, expected `listening on http://HOST:PORT`")
        self.url = match.group(1)
        return self

    @staticmethod
    def _drain_stdout(proc: subprocess.Popen, lines: "queue.Queue[str | None]") -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
        lines.put(None)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, no chance to flush anything: the crash the persistence test simulates."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=SHUTDOWN_TIMEOUT_S)

    def terminate(self) -> int:
        """SIGTERM and wait; returns the exit code (kills and raises if it does not stop)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"server did not stop within {SHUTDOWN_TIMEOUT_S}s of SIGTERM")
        return self.proc.returncode

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.terminate()
        except AssertionError:
            pass

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text("utf-8", "replace").splitlines()
        except OSError:
            return "(no server log)"
        return "server log tail:\n" + "\n".join(lines[-n:])


class LfsSpy:
    """Records the LFS transfers `huggingface_hub` makes: (path_in_repo, "basic"|"multipart", parts, chunk_size)."""

    def __init__(self):
        self.uploads: list[tuple[str, str, int, int | None]] = []

    def by_path(self) -> dict[str, tuple[str, int, int | None]]:
        return {path: (kind, parts, chunk) for path, kind, parts, chunk in self.uploads}

    def install(self, mp) -> "LfsSpy":
        from huggingface_hub import lfs

        single, iterate = lfs._upload_single_part, lfs._upload_parts_iteratively

        def spy_single(operation, upload_url):
            self.uploads.append((operation.path_in_repo, "basic", 1, None))
            return single(operation=operation, upload_url=upload_url)

        def spy_parts(operation, sorted_parts_urls, chunk_size):
            self.uploads.append((operation.path_in_repo, "multipart", len(sorted_parts_urls), chunk_size))
            return iterate(operation=operation, sorted_parts_urls=sorted_parts_urls, chunk_size=chunk_size)

        mp.setattr(lfs, "_upload_single_part", spy_single)
        mp.setattr(lfs, "_upload_parts_iteratively", spy_parts)
        return self


# --- raw HTTP, for the few wire-level checks the client hides --------------------------------


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def raw_request(method: str, url: str, token: str | None = None, body: bytes | None = None,
                content_type: str | None = None, headers: dict[str, str] | None = None) -> RawResponse:
    req = urllib.request.Request(url, method=method, data=body, headers=headers or {})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if content_type:
        req.add_header("Content-Type", content_type)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=30) as resp:
            return RawResponse(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as err:
        return RawResponse(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


NEXT_LINK_RE = re.compile(r'<([^>]+)>;\s*rel="next"')


def next_link(headers: dict[str, str]) -> str | None:
    match = NEXT_LINK_RE.search(headers.get("link", ""))
    return match.group(1) if match else None


# --- hashes and file trees ------------------------------------------------------------------


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def lfs_pointer(data: bytes) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256(data)}\nsize {len(data)}\n".encode()


def deterministic_bytes(size: int, seed: str) -> bytes:
    """Incompressible, reproducible bytes (SHA-256 in counter mode)."""
    out = bytearray()
    block = hashlib.sha256(seed.encode()).digest()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(block + counter.to_bytes(8, "little")).digest()
        counter += 1
    return bytes(out[:size])


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def read_tree(root: Path, skip_dirs: tuple[str, ...] = (".cache",)) -> dict[str, bytes]:
    """Every file under `root` as {posix relative path: bytes}, following the cache's symlinks."""
    out = {}
    for path in sorted(Path(root).rglob("*")):
        rel = path.relative_to(root)
        if rel.parts and rel.parts[0] in skip_dirs:
            continue
        if path.is_file():
            out[rel.as_posix()] = path.read_bytes()
    return out
