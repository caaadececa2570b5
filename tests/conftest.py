"""Shared test helpers. Real-node tests live in tests/integration (and the molecule
scenario) and need root; everything else is the fast lane (`make check`).

In one run, the fast lane goes first (pytest's testpaths order) and a failure there stops
the run before any node boots: nodes cost minutes, and would only fail slower.
`loopback`: a stand-in for the official release hosts. It serves a folder with the
official layout (`<base>/<path>`, as in roles/download/vars/main/artifacts.yml) on
127.0.0.1; nothing leaves this machine."""

from __future__ import annotations

import functools
import hashlib
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hardway.mirror import artifacts

REPO = Path(__file__).resolve().parents[1]
_fast_failures: list[str] = []


def _needs_nodes(path: Path) -> bool:
    return "integration" in path.parts or path.name == "test_molecule.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _needs_nodes(item.path):
            item.add_marker(pytest.mark.nodes)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed and "nodes" not in report.keywords:
        _fast_failures.append(report.nodeid)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if _fast_failures and "nodes" in item.keywords:
        pytest.exit(f"{len(_fast_failures)} fast test(s) failed (first: {_fast_failures[0]}): "
                    "not booting nodes", returncode=1)



class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Upstream:
    """A folder served on loopback with the official release layout."""

    def __init__(self, root: Path, url: str):
        self.root = root
        self.bases = {"kubernetes": f"{url}/kubernetes", "github": f"{url}/github"}
        self.checksums: dict = {}

    def publish(self, art: artifacts.Artifact, data: bytes) -> str:
        """Serve `data` as `art` with its checksum file in the project's own format;
        record and return its checksum ("sha256:<hex>")."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.root / art.local_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        sums = self.root / art.local_checksum_path
        sums.write_text(art.checksum_text(digest, sums.read_text() if sums.exists() else ""))
        self.checksums.setdefault(art.component, {}).setdefault(art.arch, {})[art.version] = \
            f"sha256:{digest}"
        return f"sha256:{digest}"


@pytest.fixture
def loopback(tmp_path):
    """An empty official-layout stand-in; tests publish what it serves."""
    root = tmp_path / "upstream"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Upstream(root, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
