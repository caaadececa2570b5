"""What the host hands a VM that has no route out: hardway's checkout, the Python wheels it
installs from (prepared here, never fetched in the VM), and the caches `make lab` would
otherwise fill from the network (the mirror, the Go toolchain its freshness check asks,
the node base image).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

from hardway.children import run, tool
from hardway.files import exclusive
from hardway.nodes import image as node_image
from hardway.settings import REPO, Settings

Log = Callable[[str], None]


def wheelhouse(settings: Settings, log: Log) -> Path:
    """Wheels for hardway-lab with its test extras, pip and the build backend, keyed by
    pyproject.toml; the VM installs from them with PIP_NO_INDEX."""
    key = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:12]
    folder = settings.cache / "vm" / f"wheelhouse-{key}"
    if (folder / ".complete").exists():
        return folder
    with exclusive(settings.cache_lock, log, "is preparing the VM's wheelhouse"):
        if not (folder / ".complete").exists():
            tmp = folder.with_name(folder.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            log(f"downloading the VM's Python wheels into {folder}")
            run([tool("pip"), "download", "--quiet",
                 "--only-binary=:all:", "--dest", str(tmp), "pip", "setuptools", "wheel",
                 f"{REPO}[test]"], what="downloading the VM's Python wheels",
                fix="check that PyPI answers (pip's own settings apply)")
            (tmp / ".complete").write_text(key + "\n")
            shutil.rmtree(folder, ignore_errors=True)
            tmp.rename(folder)
    return folder


def checkout(dest: Path) -> Path:
    """The repository's files (tracked, and new ones git does not ignore) copied to dest,
    as a user's checkout: no venv, no caches, no generated inventory."""
    listed = run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others",
                  "--exclude-standard"], what="listing the checkout's files").stdout
    for name in sorted(set(filter(None, listed.split("\0")))):
        source = REPO / name
        if not source.is_file():  # deleted in the work tree
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return dest


def mirror_archive(settings: Settings, log: Log, stage: Path) -> Path:
    """The mirror, brought up to date by this checkout's code, as a POSIX tar. Both under
    the cache lock: another checkout sharing the cache may restamp the mirror with its own
    code's key (the stamps key what packed each file), and the VM runs this checkout's.
    POSIX tar keeps modification times to the nanosecond, which the stamps compare and a
    copy through mkfs.ext4 -d does not (the VM would find the mirror stale and try to
    rebuild it from the network)."""
    from hardway.mirror import build, images

    archive = stage / "mirror.tar"
    with exclusive(settings.cache_lock, log, "is packing the mirror for a VM"):
        mirror = build.build(settings, log)
        images.build_all(settings, mirror, log)
        run(["tar", "--format=posix", "-C", str(settings.mirror.parent), "-cf", str(archive),
             settings.mirror.name], what="packing the mirror for the VM")
    return archive


def go_root() -> Path:
    return Path(run(["go", "env", "GOROOT"], what="asking Go where it lives").stdout.strip())


def laptop(settings: Settings, log: Log, stage: Path) -> dict[str, Path]:
    """The seed disk's payload for the laptop path: name in the VM -> path here."""
    node = node_image.base_image(settings, log).parent  # debian-bookworm-<recipe>
    return {
        "hardway-lab": checkout(stage / "hardway-lab"),
        "wheelhouse": wheelhouse(settings, log),
        "mirror.tar": mirror_archive(settings, log, stage),
        "go": go_root(),
        node.name: node,
    }
