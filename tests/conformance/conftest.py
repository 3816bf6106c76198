"""Conformance suite: the real `huggingface_hub` against the real `hubsync hub serve`.

The main server is started in `pytest_configure`, before any test module imports
`huggingface_hub`, so that the client is pointed at it exactly as a user would do it: through
`HF_ENDPOINT` and `HF_TOKEN` in the environment (with `HF_HUB_DISABLE_XET=1`, see hub-api.md §11).
Other servers (small multipart chunks, the kill -9 restart) are started by tests through
`start_hub` and addressed with an explicit `endpoint=`.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path

import pytest

import hubtest
from hubtest import PAGE_SIZE, READ_TOKEN, WRITE_TOKEN, HubServer, LfsSpy, ServerStartError

_STATE: dict = {}


def pytest_configure(config):
    # Isolate from whatever the developer's shell has (tokens, offline mode, a real endpoint).
    for key in list(os.environ):
        if key.startswith(("HF_", "HUGGING_FACE_")):
            del os.environ[key]
    root = Path(tempfile.mkdtemp(prefix="hubsync-conformance-"))
    _STATE["root"] = root
    os.environ["HF_HOME"] = str(root / "hf-home")
    os.environ["HF_HUB_CACHE"] = str(root / "hf-home" / "hub")
    os.environ["HF_HUB_DISABLE_XET"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["HF_HUB_DISABLE_UPDATE_CHECK"] = "1"
    os.environ["HF_TOKEN"] = WRITE_TOKEN

    server = HubServer(root / "main" / "data", root / "logs" / "main.log", ["--page-size", str(PAGE_SIZE)])
    _STATE["main"] = server
    try:
        server.start()
        os.environ["HF_ENDPOINT"] = server.url
    except ServerStartError as err:
        # Every test that needs the hub then fails with this message, instead of the whole
        # session aborting before anything is reported.
        _STATE["main_error"] = str(err)
        os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"


def pytest_unconfigure(config):
    server = _STATE.get("main")
    if server is not None:
        server.stop()
    root = _STATE.get("root")
    if root is not None and not os.environ.get("HUBSYNC_KEEP_TMP"):
        shutil.rmtree(root, ignore_errors=True)


def pytest_runtest_makereport(item, call):
    # Show the main server's stderr tail under a failing test.
    if call.when == "call" and call.excinfo is not None and "main" in _STATE:
        item.add_report_section("call", "hubsync hub serve", _STATE["main"].log_tail(20))


@pytest.fixture(scope="session")
def hub() -> HubServer:
    if "main_error" in _STATE:
        pytest.fail(f"the main hub did not start: {_STATE['main_error']}", pytrace=False)
    server = _STATE["main"]
    if not server.alive():
        pytest.fail(f"the main hub is not running any more\n{server.log_tail()}", pytrace=False)
    return server


@pytest.fixture(scope="session")
def api(hub):
    """The client a user gets from the environment: HF_ENDPOINT + HF_TOKEN (write)."""
    from huggingface_hub import HfApi

    client = HfApi()
    assert client.endpoint == hub.url
    return client


@pytest.fixture(scope="session")
def read_api(hub):
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub.url, token=READ_TOKEN)


@pytest.fixture(scope="session")
def anon_api(hub):
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub.url, token=False)


_counter = itertools.count(1)


@pytest.fixture
def name(request):
    """A fresh repo id under alice for each call: name("tree") -> "alice/tree-7"."""

    def make(prefix: str | None = None, namespace: str = hubtest.USER) -> str:
        base = prefix or request.node.name.split("[")[0].removeprefix("test_").replace("_", "-")
        return f"{namespace}/{base[:60]}-{next(_counter)}"

    return make


@pytest.fixture
def start_hub(tmp_path):
    """Starts extra servers for one test (own data folder unless given); stops them afterwards."""
    servers: list[HubServer] = []
    log_dir = _STATE["root"] / "logs"

    def start(extra_args: list[str] | None = None, data_dir: Path | None = None) -> HubServer:
        data = data_dir or tmp_path / f"hub-data-{len(servers)}"
        server = HubServer(data, log_dir / f"{tmp_path.name}-{len(servers)}.log", extra_args)
        servers.append(server)
        try:
            return server.start()
        except ServerStartError as err:
            pytest.fail(str(err), pytrace=False)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    """A fresh download cache, so downloads really go over the wire."""
    path = tmp_path / "hf-cache"
    path.mkdir()
    return path


@pytest.fixture
def lfs_spy(monkeypatch) -> LfsSpy:
    return LfsSpy().install(monkeypatch)
