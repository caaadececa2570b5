"""Real VMs for `make test-vm` (not part of `make test`): the VM image booted by QEMU, KVM
where it works, TCG otherwise. The VMs reach nothing but the host's mirror, forwarded to
them on loopback; the host reaches them over SSH on loopback ports. Every VM, and the
mirror server, is stopped at the end whatever happened."""

from __future__ import annotations

import os
import time
import urllib.request
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from hardway.children import start, tool
from hardway.settings import Settings
from hardway.vm.machine import Machine

VM_ENV = {
    "HARDWAY_BRIDGE": "hwvm0",
    "HARDWAY_SUBNET": "10.83.0.0/24",
    "HARDWAY_STATE": "/var/lib/hardway-vm",
    "HARDWAY_INVENTORY": "/var/lib/hardway-vm/inventory",
    "HARDWAY_MIRROR_PORT": "8083",
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@pytest.fixture(scope="session")
def settings() -> Settings:
    if os.geteuid() != 0:
        pytest.fail("the VM tests need root (QEMU's disks and the VM image are built as root)")
    # Settings.inventory reads the process's environment, not the one given to from_env.
    os.environ.update(VM_ENV)
    return Settings.from_env()


@pytest.fixture(scope="session")
def mirror_served(settings: Settings) -> Iterator[str]:
    """The host's mirror on 127.0.0.1 at the VM lab's port, which each VM reaches as
    http://10.0.2.100:<port>."""
    from hardway.mirror import build

    build.prepare(settings, log, verify=True)
    server = start([tool("hardway"), "mirror", "serve", "--address", "127.0.0.1", "--port",
                    str(settings.mirror_port)], what="serving the mirror to the VMs",
                   log=settings.state / "mirror-serve.log", env=dict(os.environ, **VM_ENV),
                   tied=True)
    url = f"http://127.0.0.1:{settings.mirror_port}/index.yml"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError as exc:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"the mirror server did not answer at {url}: {exc}")
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(10)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
        item: pytest.Item, call: pytest.CallInfo) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def machine(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Machine]:
    """The test's VM, powered off at the end; with HARDWAY_VM_KEEP=1 a VM whose test failed
    stays up for a look (an hour's run is not repeated lightly), and says how to reach it."""
    vm = Machine(settings, log, name=request.node.name.removeprefix("test_")[:20])
    try:
        yield vm
    finally:
        if os.environ.get("HARDWAY_VM_KEEP") == "1" and request.node.stash.get(FAILED, False) \
                and vm.running:
            log(f"HARDWAY_VM_KEEP=1: VM {vm.name} left running (pid {vm.record.pid}): "
                f"ssh {' '.join(vm.ssh_args())} -p {vm.record.port} debian@127.0.0.1; "
                f"stop it with Machine(settings, log, {vm.name!r}).stop()")
        else:
            vm.stop()


def console_tail(vm: Machine) -> str:
    path: Path = vm.console
    return "\n".join(path.read_text(errors="replace").splitlines()[-20:]) if path.exists() else ""
