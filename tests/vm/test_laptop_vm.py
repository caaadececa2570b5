"""The self-learner's laptop, in a VM: systemd as PID 1 and cgroup v2. `make lab` from a
copy of the checkout (no network: wheels, the mirror and the node image come from this
host) brings a node up as a transient unit with delegated cgroups, provisions it, a lab
passes, and `nodes down` leaves the VM as it found it, its kernel settings included."""

from __future__ import annotations

import time

from hardway.vm import payload
from tests.integration.conftest import MOVING
from tests.vm.conftest import log

LAB = "/home/debian/hardway-lab"
# A laptop user's `sudo make lab`, with the caches the VM cannot fetch put in place first.
PREPARE = f"""set -e
seed=/run/hardway-seed
cp -a $seed/hardway-lab {LAB} && chown -R debian:debian {LAB}
mkdir -p /var/cache/hardway/images
tar -C /var/cache/hardway -xf $seed/mirror.tar
cp -a $seed/debian-bookworm-* /var/cache/hardway/images/
cp -a $seed/go /usr/local/go
"""
ENV = "PATH=/usr/local/go/bin:$PATH PIP_NO_INDEX=1 PIP_FIND_LINKS=/run/hardway-seed/wheelhouse " \
      "NO_COLOR=1 COLUMNS=200 HARDWAY_NODE_BOOT_SECONDS=900"
LEFTOVERS = """systemctl list-units --all --no-legend --plain 'hardway-*'
machinectl list --no-legend 2>/dev/null
ip -o link | grep -E 'hwlab0|vb-' || true
find /sys/fs/cgroup -name '*hardway*' -o -name 'kubepods*' | head
ls /var/lib/hardway/nodes 2>/dev/null || true
ls /run/systemd/nspawn/propagate 2>/dev/null || true
"""


def vm_sysctls(vm) -> dict[str, str]:
    values = {}
    for line in vm.ssh("sysctl -a 2>/dev/null").stdout.splitlines():
        key, _, value = line.partition(" = ")
        if not key.startswith("net.") and not key.startswith(MOVING):
            values[key] = value
    return values


def in_lab(vm, command: str, timeout: float = 3600):
    result = vm.ssh(f"cd {LAB} && {ENV} {command}", check=False, timeout=timeout)
    assert result.returncode == 0, f"{command} failed ({result.returncode}):\n" \
        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_make_lab_on_a_systemd_cgroup_v2_machine(settings, machine, tmp_path):
    seed = payload.laptop(settings, log, tmp_path)
    boot = machine.start(payload=seed)
    log(f"VM booted ({machine.record.accel}) and answers SSH: {boot:.1f} s")
    assert machine.ssh("ps -p 1 -o comm=").stdout.strip() == "systemd"
    assert machine.ssh("stat -fc %T /sys/fs/cgroup").stdout.strip() == "cgroup2fs"
    machine.ssh(PREPARE, timeout=1800)
    before = vm_sysctls(machine)
    clean = machine.ssh(LEFTOVERS).stdout

    began = time.monotonic()
    result = in_lab(machine, "make lab")
    log(f"make lab in the VM: {time.monotonic() - began:.1f} s")
    assert "ready" in result.stdout
    unit = machine.ssh("systemctl show -p Delegate -p ControlGroup -p ActiveState "
                       "hardway-hwlab0-node1.service").stdout
    assert "Delegate=yes" in unit and "ActiveState=active" in unit, unit
    assert "node1" in machine.ssh("machinectl list --no-legend").stdout

    for step in ("start", "solve", "check"):
        began = time.monotonic()
        in_lab(machine, f".venv/bin/hardway lab {step} 01")
        log(f"lab {step} 01: {time.monotonic() - began:.1f} s")

    began = time.monotonic()
    down = in_lab(machine, ".venv/bin/hardway nodes down")
    log(f"nodes down in the VM: {time.monotonic() - began:.1f} s")
    assert "nothing left behind" in down.stdout
    assert machine.ssh(LEFTOVERS).stdout == clean
    after = vm_sysctls(machine)
    changed = {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
               if before.get(k) != after.get(k)}
    assert changed == {}
