"""Where hardway keeps things, and the knobs a user can turn with environment variables.

Everything slow to make (base images, Go builds, the mirror) lives under the cache
directory, keyed by what made it; everything that describes running nodes lives under
the state directory. Neither is inside the repository.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

# The repository holds the Ansible content (roles, labs, site.yml) next to this package.
REPO = Path(__file__).resolve().parents[2]
# Local node N's pod network is the Nth /24 of this range (nodes/lifecycle.py).
LOCAL_POD_RANGE = ipaddress.IPv4Network("10.240.0.0/16")
# Ranges that look private to Python but cannot carry a lab's traffic.
_UNUSABLE = {
    ipaddress.IPv4Network("0.0.0.0/8"): "'this network', which no host can use",
    ipaddress.IPv4Network("127.0.0.0/8"): "loopback",
    ipaddress.IPv4Network("169.254.0.0/16"): "link-local, with the cloud metadata address",
    ipaddress.IPv4Network("224.0.0.0/4"): "multicast",
    ipaddress.IPv4Network("240.0.0.0/4"): "reserved",
}


class UsageError(Exception):
    """Bad input from the user: the message says what to change. Exit code 2."""


class HardwayError(Exception):
    """Something failed that the user can act on: the message says how. Exit code 1."""


_FILE_FIXES = {
    errno.EACCES: "run hardway as root (sudo), or point HARDWAY_CACHE / HARDWAY_STATE at "
                  "folders you can write",
    errno.EROFS: "point HARDWAY_CACHE / HARDWAY_STATE at a writable disk",
    errno.ENOSPC: "free some space there, or point HARDWAY_CACHE / HARDWAY_STATE at a larger disk",
    errno.ENOTDIR: "part of that path is a file: correct the path",
}
_FILE_FIXES[errno.EPERM] = _FILE_FIXES[errno.EACCES]
_FILE_FIXES[errno.EDQUOT] = _FILE_FIXES[errno.ENOSPC]


@contextmanager
def file_errors() -> Iterator[None]:
    """A file hardway cannot read or write (permissions, space, a read-only disk) is for
    the user to fix, not a bug: one line naming the path and what to do."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            raise
        fix = _FILE_FIXES.get(exc.errno or 0, "check the path and its permissions")
        raise HardwayError(f"{exc.filename}: {exc.strerror}; {fix}") from None


def lab_ranges() -> dict[str, ipaddress.IPv4Network]:
    """The networks the labs use themselves: every lab_*_cidr in labs/*/vars.yml."""
    from hardway.labs import lab_variables  # hardway.labs imports this module

    return {f"{key} {value} (labs/*/vars.yml)": ipaddress.IPv4Network(value)
            for key, value in lab_variables().items()
            if key.startswith("lab_") and key.endswith("_cidr")}


def range_problem(network: ipaddress.IPv4Network,
                  in_use: dict[str, ipaddress.IPv4Network]) -> str | None:
    """Why network cannot be a lab network (a node subnet, a pod range), or None: it must be
    private, usable, and clear of every range in_use (what it is -> network)."""
    for bad, why in _UNUSABLE.items():
        if network.overlaps(bad):
            return f"{network} overlaps {bad} ({why})"
    if not network.is_private:
        return f"{network} is not a private range"
    for what, other in in_use.items():
        if network.overlaps(other):
            return f"{network} overlaps {what}"
    return None


@dataclass(frozen=True)
class Settings:
    cache: Path
    state: Path
    mirror: Path
    bridge: str
    subnet: ipaddress.IPv4Network
    mirror_port: int
    node_memory: int = 1536 * 2**20
    node_pids: int = 4096
    node_boot_seconds: int = 90
    # The control plane (etcd, the API server, ...): built into the mirror and run on the
    # first local node only when on, since its cold build takes 20+ minutes.
    control_plane: bool = False

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        cache = Path(env.get("HARDWAY_CACHE", "/var/cache/hardway"))
        bridge = env.get("HARDWAY_BRIDGE", "hwlab0")
        # Node veths are named vb-<bridge>-nodeN and interface names stop at 15 characters.
        if not 1 <= len(bridge) <= 6 or not bridge.isalnum():
            raise UsageError(
                f"HARDWAY_BRIDGE={bridge!r} is not a usable bridge name: "
                "use 1-6 letters or digits, e.g. hwlab0"
            )
        raw = env.get("HARDWAY_SUBNET", "10.77.0.0/24")
        try:
            subnet = ipaddress.IPv4Network(raw, strict=True)
        except ValueError as exc:
            raise UsageError(
                f"HARDWAY_SUBNET={raw!r} is not an IPv4 network ({exc}): use e.g. 10.77.0.0/24"
            ) from None
        problem = range_problem(subnet, {**lab_ranges(),
                                         f"the local pod networks {LOCAL_POD_RANGE}": LOCAL_POD_RANGE})
        if problem or subnet.prefixlen > 28:
            raise UsageError(f"HARDWAY_SUBNET={raw}: {problem or 'is smaller than /28'}: use a "
                             "private range of /28 or larger, e.g. 10.77.0.0/24")
        port = env.get("HARDWAY_MIRROR_PORT", "8077")
        if not (port.isascii() and port.isdigit()) or not 1024 <= int(port) <= 65535:
            raise UsageError(f"HARDWAY_MIRROR_PORT={port!r} must be a port from 1024 to 65535")
        memory = env.get("HARDWAY_NODE_MEMORY", "1536M")
        units = {"K": 2**10, "M": 2**20, "G": 2**30}
        try:
            node_memory = int(memory[:-1]) * units[memory[-1].upper()] if memory[-1:].isalpha() \
                else int(memory)
        except (KeyError, ValueError):
            raise UsageError(f"HARDWAY_NODE_MEMORY={memory!r} must be a size such as 1536M or 2G") \
                from None
        pids = env.get("HARDWAY_NODE_PIDS", "4096")
        if not (pids.isascii() and pids.isdigit()) or int(pids) < 256:
            raise UsageError(f"HARDWAY_NODE_PIDS={pids!r} must be a number of at least 256")
        boot = env.get("HARDWAY_NODE_BOOT_SECONDS", "90")
        if not (boot.isascii() and boot.isdigit()) or not 10 <= int(boot) <= 3600:
            raise UsageError(f"HARDWAY_NODE_BOOT_SECONDS={boot!r} must be a number of seconds "
                             "from 10 to 3600")
        if node_memory < 512 * 2**20:
            raise UsageError(f"HARDWAY_NODE_MEMORY={memory} is too small: a node needs 512M or more")
        control_plane = env.get("HARDWAY_CONTROL_PLANE", "0")
        if control_plane not in ("0", "1"):
            raise UsageError(f"HARDWAY_CONTROL_PLANE={control_plane!r} must be 1 (build and run "
                             "the control plane) or 0 (the default: nodes only)")
        return cls(
            control_plane=control_plane == "1",
            node_memory=node_memory,
            node_pids=int(pids),
            node_boot_seconds=int(boot),
            cache=cache,
            state=Path(env.get("HARDWAY_STATE", "/var/lib/hardway")),
            mirror=Path(env.get("HARDWAY_MIRROR", str(cache / "mirror"))),
            bridge=bridge,
            subnet=subnet,
            mirror_port=int(port),
        )

    @cached_property
    def host_address(self) -> ipaddress.IPv4Address:
        """The host's own address on the lab bridge: the first in the subnet."""
        return self.subnet.network_address + 1

    def node_address(self, index: int) -> ipaddress.IPv4Address:
        """Node N (from 1) gets the Nth address after the first ten, which stay for the host."""
        address = self.subnet.network_address + 10 + index
        if address >= self.subnet.broadcast_address:
            raise UsageError(f"{self.subnet} has no room for node {index}: use a larger subnet")
        return address

    @property
    def mirror_url(self) -> str:
        return f"http://{self.host_address}:{self.mirror_port}"

    @property
    def cache_lock(self) -> Path:
        """Held while the shared cache (mirror, base images) is checked or built."""
        return self.cache / "build.lock"

    @property
    def classes(self) -> Path:
        """Where `hardway class init` writes each class's inventory folder."""
        folder = Path(os.environ.get("HARDWAY_CLASSES", str(REPO / "inventories")))
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"HARDWAY_CLASSES={folder} is a file: point it at a folder "
                             "(or unset it for inventories/)")
        return folder

    @property
    def inventory(self) -> Path:
        return Path(os.environ.get("HARDWAY_INVENTORY", str(REPO / "inventories" / "local")))
