"""The download role, run by ansible-playbook on localhost (connection=local) with every
destination under tmp_path (folders it makes itself) and the artifacts served by the loopback
stand-in with the official layout: a release tarball and an image archive named by URL and
checksum, as the mirror's images are, in one run. A verified install, a corrupted download
refused with the working binaries kept, an interrupted unpack repaired by a re-run, and a
second run with no change. Both ways of fetching: on each host, and once on the controller
then pushed."""

import hashlib
import io
import shutil
import tarfile

import pytest

from hardway.mirror import artifacts
from tests.unit import playbook

COMPONENT = "containerd"  # a tarball with several members: the hard case
IMAGE = f"pause-{artifacts.host_arch()}.tar"
ARCH = artifacts.host_arch()


def tarball(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.fixture
def lab(tmp_path, loopback):
    art = artifacts.artifact(COMPONENT, ARCH)
    members = {name: f"#!/bin/sh\necho {name}\n".encode() + bytes(range(256)) * 64
               for name in art.files}
    loopback.publish(art, tarball(members))
    image = b"an image archive" * 1000
    (loopback.root / "images").mkdir()
    (loopback.root / "images" / IMAGE).write_bytes(image)
    cache = tmp_path / "cache"
    install = {name: str(tmp_path / "bin" / name.rsplit("/", 1)[-1]) for name in art.files}
    return art, members, install, cache, loopback, image


def play(tmp_path, loopback, cache, install, push, *args):
    digest = hashlib.sha256((loopback.root / "images" / IMAGE).read_bytes()).hexdigest()
    image = {"component": "pause_image", "version": "3.10",
             "url": f"{loopback.bases['github'].rsplit('/', 1)[0]}/images/{IMAGE}",
             "checksum": f"sha256:{digest}",
             "install": {"pause": str(tmp_path / "images" / "pause.tar")}, "mode": "0644"}
    variables = {
        "download_requests": [{"component": COMPONENT, "version": artifacts.pinned_versions()[COMPONENT],
                               "install": install}, image],
        "download_base_urls": loopback.bases,
        "download_checksums": loopback.checksums,
        "download_cache_dir": str(cache / "host"),
        "download_controller_cache_dir": str(cache / "controller"),
        "download_push": push,
    }
    plays = [{"name": "Download role", "hosts": "all", "gather_facts": True,
              "roles": [{"role": "download"}]}]
    return playbook.run(tmp_path, plays, {"node": {}}, variables, *args)


def installed(install):
    return {name: open(dest, "rb").read() for name, dest in install.items()}


@pytest.mark.parametrize("push", [False, True], ids=["on-host", "pushed"])
def test_verified_install_survives_corruption_and_interruption(tmp_path, lab, push):
    art, members, install, cache, loopback, image = lab
    root = cache / ("controller" if push else "host")

    # (a) a verified install puts every member in place, and the image archive.
    first = play(tmp_path, loopback, cache, install, push)
    assert first.returncode == 0, first.output
    assert installed(install) == members
    pause = tmp_path / "images" / "pause.tar"
    assert pause.read_bytes() == image and pause.stat().st_mode & 0o777 == 0o644
    archive, = root.rglob(art.filename)
    tree = archive.parent / "files"

    # (d) a second run, and a check-mode run, change nothing.
    for args in ((), ("--check",)):
        again = play(tmp_path, loopback, cache, install, push, *args)
        assert again.returncode == 0, again.output
        assert again.recap()["node"]["changed"] == 0, again.output

    # (c) an interrupted unpack: a partial tree (where the role before this one unpacked,
    # and in this role's temporary folder) and a half-written installed binary.
    first_member = art.files[0]
    shutil.rmtree(tree)
    for partial in (archive.parent / "unpacked", archive.parent / ".files.partial"):
        (partial / first_member).parent.mkdir(parents=True, exist_ok=True)
        (partial / first_member).write_bytes(members[first_member][:100])
    with open(install[first_member], "r+b") as half:
        half.truncate(100)
    repaired = play(tmp_path, loopback, cache, install, push)
    assert repaired.returncode == 0, repaired.output
    assert installed(install) == members
    assert not (archive.parent / ".files.partial").exists()

    # (b) a truncated cached download, and the release host now serving a corrupted file:
    # refused, and the working binaries stay as they were.
    archive.write_bytes(archive.read_bytes()[:archive.stat().st_size // 2])
    shutil.rmtree(tree)
    (loopback.root / art.local_path).write_bytes(b"corrupted" * 1000)
    refused = play(tmp_path, loopback, cache, install, push)
    assert refused.returncode != 0
    assert f"Could not fetch a verified {COMPONENT}" in refused.flat, refused.output
    assert "did not match" in refused.flat, refused.output
    assert installed(install) == members
