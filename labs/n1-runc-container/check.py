"""Lab n1: runc alone runs a container from a bundle of the busybox image's root
filesystem, with pid, network and mount namespaces of its own."""

import pytest
from labcheck import look

NAMESPACES = {"pid": "pid", "net": "network", "mnt": "mount"}
SCRIPT = """
import json, os, subprocess
out = subprocess.run(["runc", "list", "-f", "json"], capture_output=True, text=True)
# Before runc's first container its state folder does not exist: nothing runs, no error.
never = out.returncode != 0 and "/run/runc: no such file" in out.stderr
seen = {"rc": 0 if never else out.returncode, "error": out.stderr.strip()[-300:], "containers": [],
        "node": {kind: os.readlink(f"/proc/1/ns/{kind}") for kind in ("pid", "net", "mnt")}}
for c in json.loads(out.stdout or "null") or []:
    entry = {"id": c["id"], "status": c["status"], "pid": c["pid"], "ns": {},
             "rootfs": c.get("rootfs") or os.path.join(c["bundle"], "rootfs")}
    for kind in ("pid", "net", "mnt"):
        try:
            entry["ns"][kind] = os.readlink(f"/proc/{c['pid']}/ns/{kind}")
        except OSError:
            pass
    entry["busybox"] = os.path.isfile(os.path.join(entry["rootfs"], "bin/busybox"))
    seen["containers"].append(entry)
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def seen(host) -> dict:
    return look(host, SCRIPT, "runc's containers")


def running(seen) -> list[dict]:
    assert seen["rc"] == 0, f"`runc list` failed: {seen['error']}"
    found = [c for c in seen["containers"] if c["status"] == "running"]
    others = ", ".join(f"{c['id']} {c['status']}" for c in seen["containers"])
    assert found, ("runc runs no container (`runc list`: "
                   f"{others or 'empty'}): start one with `runc run -d <name>` in the bundle")
    return found


def test_runc_runs_a_container(seen):
    running(seen)


def test_its_root_filesystem_is_the_busybox_image(seen):
    found = running(seen)
    assert any(c["busybox"] for c in found), (
        f"{', '.join(c['id'] + ' runs from ' + c['rootfs'] for c in found)}, with no bin/busybox "
        "in it: unpack the busybox image's layer into the bundle's rootfs")


def test_it_has_pid_network_and_mount_namespaces_of_its_own(seen):
    found = [c for c in running(seen) if c["busybox"]] or running(seen)
    problems = []
    for c in found:
        shared = [NAMESPACES[kind] for kind in NAMESPACES
                  if c["ns"].get(kind, seen["node"][kind]) == seen["node"][kind]]
        if not shared:
            return
        problems.append(f"{c['id']} (PID {c['pid']}) shares the node's {' and '.join(shared)} "
                        "namespace")
    raise AssertionError("; ".join(problems) + ": keep the namespaces `runc spec` lists in "
                         "config.json (linux.namespaces)")
