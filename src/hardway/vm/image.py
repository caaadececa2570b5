"""The VM image: Debian 12 from debootstrap, as the node image is made, plus Debian's kernel
and initramfs, a sudo user, and what a laptop needs for `make lab` (systemd-container,
debootstrap and the mirror's build tools), since the VM never reaches an archive.

Built once into the cache, keyed by its recipe (packages, suite, the files under
`rootfs/`), as `<cache>/vm/debian-<suite>-<key>/` holding `disk.img` (raw ext4, the root
file system), `vmlinuz` and `initrd.img`. Each boot writes to its own copy-on-write
overlay, so the cached image is never changed by a VM.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

from hardway.children import ChildError, run
from hardway.files import exclusive
from hardway.nodes import image as node_image
from hardway.settings import HardwayError, Settings

SUITE = "bookworm"
# The node image's packages, a real machine's (kernel, udev), and the Makefile's
# HOST_PACKAGES and python3-venv, so that `make lab` runs inside without an archive.
PACKAGES = (
    *node_image.PACKAGES, "udev", "linux-image-amd64", "initramfs-tools", "python3-venv",
    "make", "systemd-container", "debootstrap", "libseccomp-dev", "pkg-config", "gcc",
    "libc6-dev", "busybox-static", "nginx-light", "openssh-client", "e2fsprogs",
)
ENABLED = ("systemd-networkd.service", "hardway-seed.service", "hardway-swapfile.service")
USER = "debian"
DISK_SIZE = "12G"
VM_FILES = Path(__file__).resolve().parent / "rootfs"

Log = Callable[[str], None]


def recipe_key() -> str:
    digest = hashlib.sha256(repr((SUITE, PACKAGES, ENABLED, USER, DISK_SIZE)).encode())
    node_image.hash_tree(digest, VM_FILES)
    return digest.hexdigest()[:12]


def vm_image(settings: Settings, log: Log) -> Path:
    """The folder of the cached VM image (disk.img, vmlinuz, initrd.img), built if missing."""
    key = recipe_key()
    folder = settings.cache / "vm" / f"debian-{SUITE}-{key}"
    if (folder / ".complete").exists():
        return folder
    with exclusive(settings.cache_lock, log, "is building a VM image"):
        if not (folder / ".complete").exists():  # built while we waited?
            _build(folder, key, log)
    return folder


def _build(folder: Path, key: str, log: Log) -> None:
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rootfs = tmp / "rootfs"
    logfile = folder.with_name(folder.name + ".log")
    logfile.unlink(missing_ok=True)
    log(f"building the VM image (once; ~5 min) into {folder}")
    fix = f"see {logfile}; HARDWAY_DEBIAN_MIRROR chooses another mirror"
    try:
        run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
             str(rootfs), node_image.debian_mirror()], what="building the VM image",
            log=logfile, fix=fix)
        customise(rootfs, logfile)
        boot = rootfs / "boot"
        kernels = sorted(boot.glob("vmlinuz-*"))
        initrds = sorted(boot.glob("initrd.img-*"))
        if not kernels or not initrds:
            raise HardwayError(f"the VM image has no kernel or initramfs in {boot}; see {logfile}")
        shutil.copy2(kernels[-1], tmp / "vmlinuz")
        shutil.copy2(initrds[-1], tmp / "initrd.img")
        disk = tmp / "disk.img"
        run(["truncate", "-s", DISK_SIZE, str(disk)], what="making the VM disk", log=logfile)
        run(["mkfs.ext4", "-q", "-F", "-L", "hwroot", "-d", str(rootfs), str(disk)],
            what="making the VM's root file system", log=logfile, fix=fix)
    except (ChildError, HardwayError):
        shutil.rmtree(tmp, ignore_errors=True)  # a half-made root of a GB
        raise
    shutil.rmtree(rootfs)
    (tmp / ".complete").write_text(key + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def customise(rootfs: Path, logfile: Path) -> None:
    node_image.copy_tree(VM_FILES, rootfs)
    run(["chroot", str(rootfs), "systemctl", "enable", *ENABLED], what="enabling the VM's units",
        log=logfile)
    run(["chroot", str(rootfs), "useradd", "--create-home", "--shell", "/bin/bash",
         "--groups", "sudo", USER], what=f"adding the VM's user {USER}", log=logfile)
    # Each boot's host key comes from its seed disk (hardway-seed); none is shared.
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (rootfs / "etc/machine-id").write_text("")
    (rootfs / "etc/hostname").write_text("hardway-vm\n")
    (rootfs / "etc/hosts").write_text("127.0.0.1 localhost hardway-vm\n"
                                      "::1 localhost ip6-localhost ip6-loopback\n")
    # The VM has no route to any archive; apt must never try.
    (rootfs / "etc/apt/sources.list").write_text("")
    for path in (rootfs / "etc/apt/sources.list.d").glob("*"):
        path.unlink()
