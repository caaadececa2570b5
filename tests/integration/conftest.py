"""Real lab nodes for the integration tests.

The tests run labs of their own, one per pytest-xdist worker (bridge hwtst0, 10.78.0.0/24,
state under /var/lib/hardway-test; hwtst1, 10.73.0.0/24, /var/lib/hardway-test1; hwtst2,
10.84.0.0/24, /var/lib/hardway-test2) beside any lab the user has, share the build cache,
and take everything down at the end. They never skip: without root or the host packages
they fail with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardway.nodes.lifecycle import LocalLab, Node
from hardway.settings import Settings

# Each pytest-xdist worker has a test lab of its own: the lanes (tests/conftest.py) give
# the node part's walk to one worker or another, beside the others' test labs.
TEST_LABS = {
    "gw0": {"HARDWAY_BRIDGE": "hwtst0", "HARDWAY_SUBNET": "10.78.0.0/24",
            "HARDWAY_STATE": "/var/lib/hardway-test",
            "HARDWAY_INVENTORY": "/var/lib/hardway-test/inventory",
            "HARDWAY_MIRROR_PORT": "8078"},
    "gw1": {"HARDWAY_BRIDGE": "hwtst1", "HARDWAY_SUBNET": "10.73.0.0/24",
            "HARDWAY_STATE": "/var/lib/hardway-test1",
            "HARDWAY_INVENTORY": "/var/lib/hardway-test1/inventory",
            "HARDWAY_MIRROR_PORT": "8073"},
    "gw2": {"HARDWAY_BRIDGE": "hwtst2", "HARDWAY_SUBNET": "10.84.0.0/24",
            "HARDWAY_STATE": "/var/lib/hardway-test2",
            "HARDWAY_INVENTORY": "/var/lib/hardway-test2/inventory",
            "HARDWAY_MIRROR_PORT": "8084"},
}
# Two test runs on one host (two engineers) each need their own labs: HARDWAY_TEST_BRIDGE,
# HARDWAY_TEST_SUBNET, ... stand in for the first lab's values, HARDWAY_TEST1_... for the
# second's, HARDWAY_TEST2_... for the third's.
OVERRIDES = {"gw0": "HARDWAY_TEST_", "gw1": "HARDWAY_TEST1_", "gw2": "HARDWAY_TEST2_"}
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
# A worker beyond the three has none: host_before stops its node tests before they boot.
TEST_ENV = {key: os.environ.get(key.replace("HARDWAY_", OVERRIDES.get(WORKER, "HARDWAY_TEST_"), 1), value)
            for key, value in TEST_LABS.get(WORKER, TEST_LABS["gw0"]).items()}
BIN = Path(sys.executable).parent
# Counters and per-boot values that move by themselves; everything else must not move.
MOVING = ("fs.dentry-state", "fs.file-nr", "fs.inode-nr", "fs.inode-state", "fs.quota.",
          "kernel.ns_last_pid", "kernel.random.", "kernel.pty.nr", "fs.aio-nr",
          "kernel.sched_domain", "fs.binfmt_misc", "kernel.perf_event_max_sample_rate")


def host_sysctls() -> dict[str, str]:
    out = subprocess.run(["sysctl", "-a"], capture_output=True, text=True).stdout
    values = {}
    for line in out.splitlines():
        key, _, value = line.partition(" = ")
        if not key.startswith("net.") and not key.startswith(MOVING):
            values[key] = value
    return values


def hardway(*args: str, env: dict[str, str] | None = None, timeout: float = 1800,
            check: bool = True) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **(env or TEST_ENV), NO_COLOR="1", COLUMNS="200")
    result = subprocess.run([str(BIN / "hardway"), *args], capture_output=True, text=True,
                            env=full_env, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"hardway {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def ansible_playbook(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_CONFIG=str(Path(__file__).resolve().parents[2] / "ansible.cfg"),
               PATH=f"{BIN}:{os.environ['PATH']}", ANSIBLE_NOCOLOR="1")
    inventory = Path(TEST_ENV["HARDWAY_INVENTORY"]) / "hosts.yml"
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), *args],
                          capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=Path(__file__).resolve().parents[2])


def wait_for(condition, deadline: float, what: str, interval: float = 0.5):
    """Poll until condition() returns a truthy value; fail with the last thing seen."""
    end = time.monotonic() + deadline
    seen = None
    while time.monotonic() < end:
        ok, seen = condition()
        if ok:
            return seen
        time.sleep(interval)
    raise AssertionError(f"{what} not within {deadline:.0f} s; last seen: {seen}")


class TestLab:
    __test__ = False  # a helper, not tests for pytest to collect

    def __init__(self) -> None:
        self.settings = Settings.from_env(TEST_ENV)
        self.lab = LocalLab(self.settings, lambda _: None)

    @property
    def nodes(self) -> list[Node]:
        return self.lab.load()

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def sh(self, name: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return self.lab.ssh(self.node(name), command, timeout=timeout)

    def ok(self, name: str, command: str, timeout: float = 60) -> str:
        result = self.sh(name, command, timeout=timeout)
        assert result.returncode == 0, f"{name}: {command!r} failed: {result.stdout}{result.stderr}"
        return result.stdout


@pytest.fixture(scope="session")
def host_before() -> dict[str, str]:
    if os.geteuid() != 0:
        pytest.fail("the integration tests boot real nodes and must run as root")
    if WORKER not in TEST_LABS:
        pytest.fail(f"xdist worker {WORKER} has no test lab of its own (it would share gw0's): run "
                    f"with -n {len(TEST_LABS)} or fewer, as pyproject.toml does")
    return host_sysctls()


@pytest.fixture(scope="session")
def lab(host_before) -> Iterator[TestLab]:
    """Two provisioned nodes (hardway up: mirror, nodes, site.yml, health)."""
    hardway("nodes", "down", check=False)
    hardway("up", "--count", "2")
    yield TestLab()
    hardway("nodes", "down", check=False)


@pytest.fixture(scope="module")
def nodes(lab: TestLab) -> Iterator[TestLab]:
    """The worker's test lab, reset; booted and provisioned again if an earlier test on this
    worker took it down (the lanes may give a worker the node part after the test lab's end)."""
    if len(lab.nodes) < 2 or not all(node.running for node in lab.nodes):
        hardway("up", "--count", "2")
    hardway("lab", "reset")
    yield lab
    hardway("lab", "reset")
