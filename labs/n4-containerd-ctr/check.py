"""Lab n4: a busybox container runs under containerd in a namespace other than the CRI's
(k8s.io), and the student found its shim: /root/lab/n4/shim.pid holds the PID of the
containerd-shim-runc-v2 that is the container's parent."""

import pytest
from labcheck import look

SHIM_FILE = "/root/lab/n4/shim.pid"
SCRIPT = """
import json, os, subprocess, sys
def run(*args):
    return subprocess.run(args, capture_output=True, text=True).stdout
def command(pid):
    try:
        return open(f"/proc/{pid}/cmdline").read().replace("\\0", " ").strip()
    except OSError:
        return ""
def parent(pid):
    try:
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0
seen = {"namespaces": run("ctr", "namespaces", "ls", "-q").split(), "tasks": []}
for ns in seen["namespaces"]:
    if ns == "k8s.io":
        continue
    images = {}
    for line in run("ctr", "-n", ns, "containers", "ls").splitlines()[1:]:
        words = line.split()
        if len(words) >= 2:
            images[words[0]] = words[1]
    for line in run("ctr", "-n", ns, "tasks", "ls").splitlines()[1:]:
        words = line.split()
        if len(words) >= 3:
            pid = int(words[1])
            seen["tasks"].append({"namespace": ns, "id": words[0], "pid": pid, "status": words[2],
                                  "image": images.get(words[0], ""), "command": command(pid),
                                  "parent": parent(pid), "parent_command": command(parent(pid))})
try:
    seen["shim_file"] = open(sys.argv[1]).read().strip()
except OSError:
    seen["shim_file"] = None
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def seen(host) -> dict:
    return look(host, SCRIPT, "containerd's namespaces and tasks", SHIM_FILE)


def running(seen) -> list[dict]:
    found = [t for t in seen["tasks"] if t["status"] == "RUNNING"]
    others = ", ".join(f"{t['namespace']}/{t['id']} {t['status'].lower()}" for t in seen["tasks"])
    assert found, (f"no container runs in a containerd namespace of yours (namespaces: "
                   f"{', '.join(seen['namespaces']) or 'none'}; tasks outside k8s.io: "
                   f"{others or 'none'}): `ctr -n lab run -d <image> hello sleep 3600`")
    return found


def test_a_container_runs_outside_the_cris_namespace(seen):
    running(seen)


def test_it_runs_the_busybox_image(seen):
    found = running(seen)
    assert any("busybox" in t["image"] for t in found), \
        f"{', '.join(t['id'] + ' runs ' + (t['image'] or '?') for t in found)}: expected the busybox image"


def test_the_shim_behind_it_is_named(seen):
    found = running(seen)
    written = seen["shim_file"]
    assert written is not None, f"{SHIM_FILE} does not exist: write the PID of the container's shim in it"
    assert written.isdigit(), f"{SHIM_FILE} holds {written[:40]!r}, not a PID"
    shims = {t["parent"]: t for t in found if "containerd-shim" in t["parent_command"]}
    if int(written) in shims:
        return
    mine = next((t for t in found if t["pid"] == int(written)), None)
    if mine:
        raise AssertionError(f"PID {written} is the container's own process ({mine['command']}); its "
                             f"shim is its parent, PID {mine['parent']} ({mine['parent_command'][:60]})")
    raise AssertionError(f"PID {written} is not the shim of a running container of yours (their "
                         f"shims: {', '.join(str(p) for p in shims) or 'none'})")
