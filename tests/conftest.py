"""Shared test helpers. Real-node tests live in tests/integration (and the molecule
scenario) and need root; everything else is the fast lane (`make check`).

The fast lane goes first and a failure there skips every node test before a node boots:
nodes cost minutes, and would only fail slower. Node tests run in two lanes on two
pytest-xdist workers (pyproject.toml): the class test and the molecule scenario, each on a
lab of its own (hwcls0, hwmol0), beside everything on the test lab (hwtst0), each lane in
file order on one worker (the scheduler below). Under xdist
the controller sees every report, so it is the one that says when the fast lane is over
(a file the workers wait on); without xdist, the fast lane simply comes first
(testpaths order).
`loopback`: a stand-in for the official release hosts. It serves a folder with the
official layout (`<base>/<path>`, as in roles/download/vars/main/artifacts.yml) on
127.0.0.1; nothing leaves this machine."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hardway.mirror import artifacts

REPO = Path(__file__).resolve().parents[1]
# Nodes of both lanes run at once (up to 6 class machines, 4 test nodes during the kill
# drill): about 15 inotify instances each, more than the usual limit of 128 allows.
INOTIFY_LIMIT = Path("/proc/sys/fs/inotify/max_user_instances")
INOTIFY_FOR_TWO_LANES = 256
GATE_WAIT = 1800
_fast_failures: list[str] = []


# The node tests run in two lanes, one per xdist worker, each on labs of its own.
OWN_LABS = "class and molecule labs (hwcls0, hwmol0)"
LANES = {"tests/integration/test_class.py": OWN_LABS, "tests/test_molecule.py": OWN_LABS}


def lane(nodeid: str) -> str | None:
    """The lane of a node test, or None for the fast lane."""
    path = nodeid.split("::")[0]
    if path in LANES:
        return LANES[path]
    return "test lab (hwtst0, hwkil0)" if path.startswith("tests/integration/") else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the node tests, and put the fast lane first whatever the command line's order."""
    for item in items:
        if lane(item.nodeid):
            item.add_marker(pytest.mark.nodes)
    items.sort(key=lambda item: lane(item.nodeid) is not None)  # stable


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Each lab's tests on one worker, in file order; every fast test on its own."""
    from xdist.scheduler import LoadScopeScheduling

    class ByLab(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return lane(nodeid) or nodeid

    return ByLab(config, log)


class FastLaneGate:
    """On the xdist controller: when the last fast test has ended, raise the inotify limit
    for two lanes of nodes (put back at the end) and write the verdict for the workers."""

    def __init__(self, path: Path):
        self.path = path
        self.fast: set[str] | None = None
        self.ended: set[str] = set()
        self.failed: list[str] = []
        self.nodes = False
        self.inotify_before: str | None = None

    def pytest_configure_node(self, node) -> None:
        node.workerinput["hardway_gate"] = str(self.path)

    def pytest_xdist_node_collection_finished(self, node, ids: list[str]) -> None:
        if self.fast is None:
            self.fast = {i for i in ids if lane(i) is None}
            self.nodes = len(ids) > len(self.fast)
            self._maybe_open()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if lane(report.nodeid) is None:
            if report.failed:
                self.failed.append(report.nodeid)
            if report.when == "teardown":
                self.ended.add(report.nodeid)
                self._maybe_open()

    def _maybe_open(self) -> None:
        if self.fast is None or self.path.exists() or not self.ended >= self.fast:
            return
        if self.nodes and not self.failed and os.geteuid() == 0:
            limit = INOTIFY_LIMIT.read_text().strip()
            if int(limit) < INOTIFY_FOR_TWO_LANES:
                self.inotify_before = limit
                INOTIFY_LIMIT.write_text(str(INOTIFY_FOR_TWO_LANES))
        self.path.write_text(json.dumps(self.failed))

    def pytest_unconfigure(self) -> None:
        if self.inotify_before is not None:
            INOTIFY_LIMIT.write_text(self.inotify_before)
        shutil.rmtree(self.path.parent, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "dist", "no") != "no" and not hasattr(config, "workerinput"):
        gate = Path(tempfile.mkdtemp(prefix="hardway-gate-")) / "fast-lane"
        config.pluginmanager.register(FastLaneGate(gate), "hardway-fast-lane-gate")


def _fast_lane_failures(config: pytest.Config) -> list[str]:
    """The fast tests that failed, once the whole fast lane has run."""
    gate = getattr(config, "workerinput", {}).get("hardway_gate")
    if not gate:
        return _fast_failures
    end = time.monotonic() + GATE_WAIT
    while not Path(gate).exists():
        if time.monotonic() > end:
            pytest.fail(f"the fast lane did not finish within {GATE_WAIT} s")
        time.sleep(0.5)
    return json.loads(Path(gate).read_text())


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed and lane(report.nodeid) is None:
        _fast_failures.append(report.nodeid)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if "nodes" in item.keywords:
        failed = _fast_lane_failures(item.config)
        if failed:
            pytest.skip(f"{len(failed)} fast test(s) failed (first: {failed[0]}): "
                        "not booting nodes")


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
