"""The nodes' base images: Debian 12 or 13 from debootstrap plus our node-side files.

Each is built once into the cache, keyed by its recipe (package list, suite and the files
under `rootfs/`), so editing any of those rebuilds it and nothing else does.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from hardway.children import ChildError, run
from hardway.files import exclusive
from hardway.settings import HardwayError, Settings

# The systems a node can run, by the name users give them, and their Debian suite.
SYSTEMS = {"debian12": "bookworm", "debian13": "trixie"}
DEFAULT_SYSTEM = "debian12"
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "iproute2", "iptables", "conntrack", "procps", "curl",
    "ca-certificates", "openssh-server", "python3", "python3-apt", "kmod", "util-linux", "sudo",
)
# Units that cannot work in a lab node, or would reach past it: systemd-sysctl would
# apply the image's sysctl.d to the host kernel; networkd waits forever for udev.
MASKED = (
    "systemd-sysctl.service", "systemd-networkd.service", "systemd-networkd.socket",
    "systemd-networkd-wait-online.service", "systemd-udevd.service",
    "systemd-udev-trigger.service", "console-getty.service", "getty@.service",
    "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer",
)
ENABLED = ("hardway-cgroups.service", "hardway-kernel-view.service", "hardway-net-sysctls.service",
           "hardway-network.service", "hardway-stop-pods.service")
NODE_FILES = Path(__file__).resolve().parent / "rootfs"

Log = Callable[[str], None]


def hash_tree(digest: hashlib._Hash, folder: Path) -> None:
    """Feed a folder of files to lay over a root filesystem into a recipe's digest: names,
    contents and modes."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
            digest.update(oct(path.stat().st_mode & 0o777).encode())


def copy_tree(folder: Path, rootfs: Path) -> None:
    """Lay a folder of files over a root filesystem, at the same paths."""
    for source in sorted(folder.rglob("*")):
        target = rootfs / source.relative_to(folder)
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def recipe_key(suite: str) -> str:
    digest = hashlib.sha256()
    digest.update(repr((suite, PACKAGES, MASKED, ENABLED)).encode())
    hash_tree(digest, NODE_FILES)
    return digest.hexdigest()[:12]


def debian_mirror(env: Mapping[str, str] | None = None) -> str:
    """The Debian archive this host already uses (HARDWAY_DEBIAN_MIRROR overrides it)."""
    chosen = (os.environ if env is None else env).get("HARDWAY_DEBIAN_MIRROR")
    if chosen:
        return chosen
    for uri in apt_uris(Path("/etc/apt")):
        if uri.rstrip("/").endswith("/debian"):
            return uri
    raise HardwayError("no Debian archive found in /etc/apt: set HARDWAY_DEBIAN_MIRROR to the URL "
                       "of a Debian mirror the host can reach")


def apt_uris(apt: Path) -> list[str]:
    """Archive URIs from deb822 .sources files and one-line .list files, in apt's order."""
    uris: list[str] = []
    files = [apt / "sources.list"] + sorted((apt / "sources.list.d").glob("*"))
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            uris += re.findall(r"^URIs:\s*(\S+)", text, flags=re.M)
        elif path.suffix == ".list" or path.name == "sources.list":
            uris += re.findall(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)", text, flags=re.M)
    return uris


def base_image(settings: Settings, log: Log, system: str = DEFAULT_SYSTEM) -> Path:
    """The root directory of the cached base image of `system` (a key of SYSTEMS), built
    if missing."""
    suite = SYSTEMS[system]
    key = recipe_key(suite)
    root = settings.cache / "images" / f"debian-{suite}-{key}"
    if (root / ".complete").exists():
        return root / "rootfs"
    with exclusive(settings.cache_lock, log, "is building a node base image"):
        if not (root / ".complete").exists():  # built while we waited?
            _build_base(root, key, suite, system, log)
    return root / "rootfs"


def _build_base(root: Path, key: str, suite: str, system: str, log: Log) -> None:
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    log(f"building the node base image ({system}, once; ~2 min) into {root}")
    logfile = root.with_name(root.name + ".log")
    logfile.unlink(missing_ok=True)
    try:
        run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", suite,
             str(tmp / "rootfs"), debian_mirror()], what="building the node base image",
            log=logfile, fix=f"see {logfile}; HARDWAY_DEBIAN_MIRROR chooses another mirror")
    except ChildError:
        shutil.rmtree(tmp, ignore_errors=True)  # a half-made root of some hundred MB
        raise
    customise(tmp / "rootfs")
    (tmp / ".complete").write_text(key + "\n")
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)


def customise(rootfs: Path) -> None:
    copy_tree(NODE_FILES, rootfs)
    systemd = rootfs / "etc/systemd/system"
    for unit in MASKED:
        link = systemd / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    for unit in ENABLED:
        wanted = "sysinit.target" if unit in ("hardway-cgroups.service",
                                             "hardway-kernel-view.service") \
            else "multi-user.target"
        wants = systemd / f"{wanted}.wants"
        wants.mkdir(exist_ok=True)
        link = wants / unit
        link.unlink(missing_ok=True)
        link.symlink_to(f"/etc/systemd/system/{unit}")
    # Per-node identity is written at node creation: no shared machine-id or host keys.
    (rootfs / "etc/machine-id").write_text("")
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    # Nodes have no route to any archive; apt must never try.
    (rootfs / "etc/apt/sources.list").write_text("")
    for path in (rootfs / "etc/apt/sources.list.d").glob("*"):
        path.unlink()
    (rootfs / "etc/hostname").write_text("node\n")
