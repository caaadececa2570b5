"""One cgroup subtree per node, in every hierarchy the host has.

Where systemd is not PID 1 (this kind of build machine), nothing else separates two
nspawn nodes: started from the same cgroup they share /payload and /kubepods, and one
node's systemd can kill the other's processes. So each node gets a fresh child cgroup in
every hierarchy before nspawn starts, with memory and pids caps on it; removing a node
kills whatever is still in it and removes the directories depth-first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Hierarchy:
    controllers: str  # "memory", "cpu,cpuacct", "name=systemd", "" for cgroup2
    mount: Path
    path: str  # this process's cgroup inside it


def hierarchies(proc_cgroup: str | None = None, mountinfo: str | None = None) -> list[Hierarchy]:
    """Every cgroup hierarchy with its mount point and our position in it."""
    proc_cgroup = proc_cgroup or Path("/proc/self/cgroup").read_text()
    mountinfo = mountinfo or Path("/proc/self/mountinfo").read_text()
    mounts: dict[str, Path] = {}
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(tail) < 3 or len(fields) < 5:
            continue
        fstype, options = tail[0], tail[2].split(",")
        if fstype == "cgroup2":
            mounts.setdefault("", Path(fields[4]))
        elif fstype == "cgroup":
            names = [o for o in options if o not in ("rw", "ro", "nosuid", "nodev", "noexec",
                                                      "relatime", "clone_children")
                     and not o.startswith(("release_agent=", "xattr"))]
            mounts.setdefault(",".join(sorted(names)), Path(fields[4]))
    result = []
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        key = ",".join(sorted(controllers.split(","))) if controllers else ""
        if key in mounts:
            result.append(Hierarchy(controllers, mounts[key], path))
    return result


def systemd_is_pid1() -> bool:
    """sd_booted(): systemd manages this host (a laptop), as opposed to a container or VM
    whose PID 1 is something else (this build machine)."""
    return Path("/run/systemd/system").is_dir() and \
        Path("/proc/1/comm").read_text().strip() == "systemd"


def unified_only() -> bool:
    return (CGROUP_ROOT / "cgroup.controllers").exists()


def create(name: str, memory_bytes: int, pids: int) -> list[str]:
    """Make the node's cgroup in every hierarchy; returns the absolute directories."""
    dirs = []
    for h in hierarchies():
        directory = h.mount / h.path.lstrip("/") / name
        directory.mkdir(exist_ok=True)
        if "cpuset" in h.controllers.split(","):
            # A new cpuset is empty and refuses tasks until it inherits CPUs and memory nodes.
            for knob in ("cpuset.cpus", "cpuset.mems"):
                (directory / knob).write_text((directory.parent / knob).read_text())
        if "memory" in h.controllers.split(","):
            (directory / "memory.limit_in_bytes").write_text(str(memory_bytes))
        if "pids" in h.controllers.split(","):
            (directory / "pids.max").write_text(str(pids))
        if h.controllers == "" and (directory / "memory.max").exists():
            (directory / "memory.max").write_text(str(memory_bytes))
        if h.controllers == "" and (directory / "pids.max").exists():
            (directory / "pids.max").write_text(str(pids))
        dirs.append(str(directory))
    return dirs


def join(dirs: list[str]) -> None:
    """Move the calling process into the node's cgroups (runs in the child before exec)."""
    pid = str(os.getpid())
    for directory in dirs:
        Path(directory, "cgroup.procs").write_text(pid)


def _tree(root: Path) -> list[Path]:
    """root and every cgroup directory below it. A directory removed while it is read (a
    node's systemd ending a unit, another lab's node going down) is skipped: os.walk
    ignores what it cannot list, where Path.rglob raises."""
    return [Path(top) / name for top, names, _ in os.walk(root) for name in names] + [root]


def pids(dirs: list[str]) -> set[int]:
    found: set[int] = set()
    for directory in dirs:
        root = Path(directory)
        if not root.exists():
            continue
        for cgroup in _tree(root):
            try:
                found.update(int(p) for p in (cgroup / "cgroup.procs").read_text().split())
            except OSError:
                continue
    return found


def kill_all(dirs: list[str], deadline: float = 10.0) -> set[int]:
    """SIGKILL every process left in the node's cgroups; returns those still alive."""
    end = time.monotonic() + deadline
    while (alive := pids(dirs)) and time.monotonic() < end:
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    return pids(dirs)


def remove(dirs: list[str]) -> list[str]:
    """Remove the node's cgroup directories depth-first; returns any that remain."""
    left = []
    for directory in dirs:
        root = Path(directory)
        if not root.exists():
            continue
        for cgroup in sorted(_tree(root), key=lambda p: len(p.parts), reverse=True):
            _rmdir(cgroup)
        if root.exists():
            left.append(directory)
    return left


def _rmdir(path: Path) -> None:
    for _ in range(20):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)


def leftovers(prefix: str) -> list[str]:
    """cgroup directories named for nodes with this prefix, wherever they were created."""
    found = []
    for h in hierarchies():
        base = h.mount
        if not base.exists():
            continue
        # The whole hierarchy, other labs' nodes included: those may go away meanwhile.
        found += [str(path) for path in _tree(base) if path.name.startswith(prefix)]
    return sorted(set(found))
