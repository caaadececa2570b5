#!/usr/bin/python
"""The facts the roles use, read from a node in one module run."""

from __future__ import annotations

import os
import platform
import socket

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: node_facts
short_description: The facts the roles use, in one module run
description:
  - The plays' fact module (ansible.cfg, facts_modules), in place of setup. It gives the
    few facts of setup's min subset the roles read (system, kernel, architecture,
    hostname, distribution, os_family) and, under hardway_node, what the roles would
    otherwise each read with a command of their own (docs/provisioning.md, "A converge
    with nothing to do").
  - Read once per run, before any role changes the node (the preflight gathers them, and
    later plays keep them: gathering = smart). Only what no role changes before it reads
    it belongs here; the units' states are the one exception the roles allow for: a role
    that changed its unit's files, or restarted it, acts on that and not on the facts.
options: {}
"""

RETURN = r"""
ansible_facts:
  description: >-
    system, kernel, architecture, hostname, distribution, distribution_version,
    os_family; hardway_node with modules_dir (the running kernel has a modules folder),
    cgroup_fs and containerd_fs (stat -f's type names of /sys/fs/cgroup and of
    /var/lib/containerd, or of its nearest existing parent), cap_bnd (this process's
    capability bounding set, hex), swap_on (a swap device is in use), services (per unit
    the roles start, such as kubelet: active, sub, restarts, enabled and reload, systemd's
    ActiveState, SubState, NRestarts, UnitFileState and NeedDaemonReload) and packages
    (the names of the installed Debian packages).
  type: dict
  returned: always
"""


def read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return ""


def os_release() -> dict[str, str]:
    fields = {}
    for line in read("/etc/os-release").splitlines():
        key, sep, value = line.strip().partition("=")
        if sep:
            fields[key] = value.strip().strip("\"'")
    return fields


def status_field(name: str) -> str:
    for line in read("/proc/self/status").splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return ""


# The units the roles start: their state as systemd has them, so a converge that finds each
# running and enabled, as systemd last read it, starts nothing (and asks systemd nothing more).
UNITS = ("containerd", "kubelet", "etcd", "kube-apiserver", "kube-controller-manager",
         "kube-scheduler")
UNIT_PROPERTIES = {"ActiveState": "active", "SubState": "sub", "NRestarts": "restarts",
                   "UnitFileState": "enabled", "NeedDaemonReload": "reload"}


def units(shown: str) -> dict[str, dict[str, str]]:
    """`systemctl show -p Id -p ...` of several units (blocks apart by an empty line), per
    unit name without .service: its active and sub state, how often systemd restarted it
    by itself, its unit file state and whether it needs a reload ("" where systemd does not
    know the unit)."""
    found = {}
    for block in shown.split("\n\n"):
        fields = dict(line.partition("=")[::2] for line in block.splitlines() if "=" in line)
        name = fields.get("Id", "").removesuffix(".service")
        if name in UNITS:
            found[name] = {short: fields.get(key, "") for key, short in UNIT_PROPERTIES.items()}
    return found


def existing(path: str) -> str:
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def main() -> None:
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)

    def out(*argv: str) -> str:
        """The command's output, or "" where it fails or the node lacks it (a system the
        roles do not support: their assert says so, after the facts)."""
        program = module.get_bin_path(argv[0])
        if program is None:
            return ""
        rc, stdout, _ = module.run_command([program, *argv[1:]])
        return stdout.strip() if rc == 0 else ""

    release = os_release()
    family = "Debian" if "debian" in (release.get("ID", ""), *release.get("ID_LIKE", "").split()) \
        else release.get("ID", "").capitalize()
    # /proc/swaps lists one device per line under its header.
    swap_on = len(read("/proc/swaps").strip().splitlines()) > 1
    packages = out("dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Package}\n")
    shown = out("systemctl", "show", "-p", "Id", *(f"-p{key}" for key in UNIT_PROPERTIES),
                *(f"{unit}.service" for unit in UNITS))
    module.exit_json(changed=False, ansible_facts={
        "system": platform.system(),
        "kernel": platform.release(),
        "architecture": platform.machine(),
        "hostname": socket.gethostname().split(".")[0],
        "distribution": release.get("NAME", "").split(" ")[0] or platform.system(),
        "distribution_version": release.get("VERSION_ID", ""),
        "os_family": family,
        "hardway_node": {
            "modules_dir": os.path.isdir(f"/lib/modules/{platform.release()}"),
            "cgroup_fs": out("stat", "-f", "-c", "%T", "/sys/fs/cgroup"),
            "containerd_fs": out("stat", "-f", "-c", "%T", existing("/var/lib/containerd")),
            "cap_bnd": status_field("CapBnd"),
            "swap_on": swap_on,
            "services": units(shown),
            "packages": sorted(line.split()[1] for line in packages.splitlines()
                               if line.startswith("ii ") and len(line.split()) == 2),
        },
    })


if __name__ == "__main__":
    main()
