"""Shared test helpers. The integration tests need root and run real software: lab nodes
(tests/integration, tests/control_plane, the molecule scenario) or roles on this host
(tests/local); everything else, unit and lint, is the fast lane (`make check`).

The fast lane goes first and a failure there skips every integration test before a node
boots: nodes cost minutes, and would only fail slower. Integration tests run in lanes on
three pytest-xdist workers (pyproject.toml), each lane in file order on one worker (LANES
and the scheduler below). Under xdist
the controller sees every report, so it is the one that says when the fast lane is over
(a file the workers wait on); without xdist, the fast lane simply comes first
(testpaths order).
`loopback`: a stand-in for the official release hosts. It serves a folder with the
official layout (`<base>/<path>`, as in roles/download/vars/main/artifacts.yml) on
127.0.0.1; nothing leaves this machine."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import re
import shutil
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

from hardway.files import atomic_write
from hardway.mirror import artifacts
from hardway.nodes.host import INOTIFY_LIMIT, INOTIFY_PER_NODE

REPO = Path(__file__).resolve().parents[1]
# Nodes of every lane run at once (6 class machines, 2 molecule nodes, 2 with the control
# plane, 2 test nodes and 2 more during the kill drill, 2 when the node part's walk boots a
# test lab): more inotify instances than the usual limit of 128 allows. Twenty nodes' worth.
INOTIFY_FOR_THE_LANES = 20 * INOTIFY_PER_NODE
GATE_WAIT = 1800
_fast_failures: list[str] = []


def module_from_file(name: str, path: Path) -> ModuleType:
    """A module imported from its file (a filter plugin, an Ansible module, a lab's check),
    none of which is on the import path."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def play_recap(output: str) -> dict[str, dict[str, int]]:
    """host -> {"ok": n, "changed": n, "failed": n, ...} from the last PLAY RECAP in
    Ansible's output."""
    recap = output.rsplit("PLAY RECAP", 1)[-1]
    return {m[1]: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m[2])}
            for m in re.finditer(r"^(\S+)\s+:\s+(ok=\d+.*)$", recap, re.MULTILINE)}


def filter_plugin(name: str) -> ModuleType:
    """One of filter_plugins/, imported from its file as Ansible loads it."""
    return module_from_file(name, REPO / "filter_plugins" / f"{name}.py")


# The node tests run in lanes, each in file order on one xdist worker at a time, the
# longest first: the control plane's (a lab of the worker's own with the control plane
# on), the test lab's (the worker's own) and the class tests' (hwcls0, then hwccp0) begin
# at once on three workers; the molecule scenario (hwmol0), the node part's walk
# and provisioning (ending with `nodes down`) follow, the node lanes on their worker's own
# test lab (tests/integration/conftest.py), booted there when it has none. xdist gives a
# worker its next lane when two tests of its own are left.
# The class tests share the instructor's download cache, and each counts its fetches: one
# lane, one after the other.
CONTROL_PLANE = "control plane (the worker's test lab, control plane on)"
TEST_LAB = "test lab (the worker's, and hwkil0)"
CLASSES = "classes (hwcls0, hwccp0)"
MOLECULE = "molecule lab (hwmol0)"
NODE_PART = "node part (the worker's test lab)"
PROVISIONING = "provisioning, then nodes down (the worker's test lab)"
# The download role run for real on this host, as root (its folders are root's): minutes of
# ansible-playbook, no nodes; taken last, by the first worker to be free.
ON_THIS_HOST = "roles on this host (tests/local)"
LANES = {"tests/control_plane/test_control_plane.py": CONTROL_PLANE,
         "tests/integration/test_class.py": CLASSES,
         "tests/control_plane/test_class_control_plane.py": CLASSES,
         "tests/test_molecule.py": MOLECULE,
         "tests/integration/test_node_part.py": NODE_PART,
         "tests/integration/test_provisioning.py": PROVISIONING,
         "tests/integration/test_zz_down.py": PROVISIONING}
# The order lanes are handed out in (xdist keeps the collection's order of scopes).
LANE_ORDER = [CONTROL_PLANE, TEST_LAB, CLASSES, MOLECULE, NODE_PART, PROVISIONING, ON_THIS_HOST]


def lane(nodeid: str) -> str | None:
    """The lane of an integration test, or None for the fast lane."""
    path = nodeid.split("::")[0]
    if path in LANES:
        return LANES[path]
    if path.startswith("tests/local/"):
        return ON_THIS_HOST
    if path.startswith("tests/vm/"):  # opt-in: make test-vm
        return "real VMs"
    if path.startswith("tests/control_plane/"):
        return CONTROL_PLANE
    return TEST_LAB if path.startswith("tests/integration/") else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the integration tests; the fast lane first whatever the command line's order,
    then the lanes in LANE_ORDER, each in file order."""
    for item in items:
        if lane(item.nodeid):
            item.add_marker(pytest.mark.integration)
    order = {name: rank for rank, name in enumerate([None, *LANE_ORDER])}
    items.sort(key=lambda item: order.get(lane(item.nodeid), len(order)))  # stable


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Each lab's tests on one worker, in file order; every fast test on its own."""
    from xdist.scheduler import LoadScopeScheduling

    class ByLab(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return lane(nodeid) or nodeid

    return ByLab(config, log)


class FastLaneGate:
    """On the xdist controller: the gate opens when the last fast test has ended, or at the
    first fast failure (a crashed worker's test counts: xdist reports it failed); then the
    inotify limit is raised for the lanes' nodes (put back at the end) and the verdict
    is written for the workers."""

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
            if report.when not in ("setup", "call"):
                self.ended.add(report.nodeid)
            self._maybe_open()

    def _maybe_open(self) -> None:
        if self.fast is None or self.path.exists():
            return
        if self.failed:
            verdict = f"{len(self.failed)} fast test(s) failed (first: {self.failed[0]})"
        elif self.ended >= self.fast:
            verdict = ""
            if self.nodes:
                self._raise_inotify_limit()
        else:
            return
        atomic_write(self.path, json.dumps(verdict).encode())

    def _raise_inotify_limit(self) -> None:
        try:
            limit = INOTIFY_LIMIT.read_text().strip()
            if int(limit) < INOTIFY_FOR_THE_LANES:
                INOTIFY_LIMIT.write_text(str(INOTIFY_FOR_THE_LANES))
                self.inotify_before = limit
        except OSError:
            pass  # not root: `hardway nodes up` says what is short, and how to fix it

    def pytest_unconfigure(self) -> None:
        if self.inotify_before is not None:
            with contextlib.suppress(OSError):
                INOTIFY_LIMIT.write_text(self.inotify_before)
        shutil.rmtree(self.path.parent, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "dist", "no") != "no" and not hasattr(config, "workerinput"):
        gate = Path(tempfile.mkdtemp(prefix="hardway-gate-")) / "fast-lane"
        config.pluginmanager.register(FastLaneGate(gate), "hardway-fast-lane-gate")


_gate_deadline: list[float] = []  # one deadline per worker, not one per node test


def _why_not_boot(config: pytest.Config) -> str:
    """Why node tests must not boot nodes ("" when the fast lane passed), once it is over."""
    gate = getattr(config, "workerinput", {}).get("hardway_gate")
    if not gate:
        return (f"{len(_fast_failures)} fast test(s) failed (first: {_fast_failures[0]})"
                if _fast_failures else "")
    if not _gate_deadline:
        _gate_deadline.append(time.monotonic() + GATE_WAIT)
    while not Path(gate).exists():
        if time.monotonic() > _gate_deadline[0]:
            return f"the fast lane did not finish within {GATE_WAIT} s"
        time.sleep(0.5)
    return json.loads(Path(gate).read_text())


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed and lane(report.nodeid) is None:
        _fast_failures.append(report.nodeid)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("integration"):
        why = _why_not_boot(item.config)
        if why:
            pytest.skip(f"{why}: no integration test runs")


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
