import gzip
import io
import json
import re
import tarfile
import time

import pytest

from hardway.mirror import artifacts, build, images


def test_tarballs_are_byte_identical_across_builds(tmp_path):
    (tmp_path / "containerd").write_bytes(b"\x7fELF containerd")
    (tmp_path / "ctr").write_bytes(b"\x7fELF ctr")
    members = {"bin/containerd": tmp_path / "containerd", "bin/ctr": tmp_path / "ctr"}
    first = build.deterministic_tarball(members)
    (tmp_path / "ctr").touch()  # a newer mtime must not matter
    assert build.deterministic_tarball(members) == first
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        assert tar.getnames() == ["bin/containerd", "bin/ctr"]
        assert {m.mtime for m in tar.getmembers()} == {0}


def test_release_tarballs_hold_the_official_member_names(tmp_path):
    for name in ("containerd", "containerd-shim-runc-v2", "ctr"):
        (tmp_path / name).write_bytes(name.encode())
    data = build.package(artifacts.artifact("containerd", "amd64"), tmp_path)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert sorted(tar.getnames()) == ["bin/containerd", "bin/containerd-shim-runc-v2",
                                          "bin/ctr"]


def test_cache_key_follows_version_recipe_and_go():
    runc = artifacts.pinned_versions()["runc"]
    key = build.cache_key("runc", runc, "amd64", "go1.26.8")
    assert key == build.cache_key("runc", runc, "amd64", "go1.26.8")
    assert key != build.cache_key("runc", runc + "1", "amd64", "go1.26.8")
    assert key != build.cache_key("runc", runc, "amd64", "go1.27.0")
    assert key != build.cache_key("runc", runc, "arm64", "go1.26.8")


def test_every_component_has_a_recipe():
    assert set(build.RECIPES) == set(artifacts.COMPONENTS)


def oci_contents(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: tar.extractfile(m) for m in tar.getmembers() if m.isfile()}
        return {name: file.read() for name, file in members.items() if file is not None}


def test_oci_archive_names_the_image_and_is_deterministic():
    rootfs = images.Rootfs()
    rootfs.file("bin/hello", b"#!/bin/sh\necho hi\n", 0o755)
    rootfs.symlink("bin/sh", "hello")
    data = images.oci_archive("lab.local/hello:1.0", rootfs, "amd64", {"Cmd": ["/bin/hello"]})
    assert data == images.oci_archive("lab.local/hello:1.0", rootfs, "amd64",
                                      {"Cmd": ["/bin/hello"]})
    files = oci_contents(data)
    index = json.loads(files["index.json"])
    descriptor = index["manifests"][0]
    assert descriptor["annotations"]["io.containerd.image.name"] == "lab.local/hello:1.0"
    manifest = json.loads(files["blobs/sha256/" + descriptor["digest"].split(":")[1]])
    layer = files["blobs/sha256/" + manifest["layers"][0]["digest"].split(":")[1]]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
        link = tar.getmember("bin/sh")
        assert link.issym() and link.linkname == "hello"  # relative, so /bin/sh works


def test_image_names_come_from_the_ansible_defaults():
    assert set(images.image_names()) == {"pause", "nginx", "busybox"}
    assert all(name.startswith("lab.local/") for name in images.image_names().values())


def test_a_warm_build_packs_nothing_until_an_input_changes(tmp_path, monkeypatch):
    from hardway.settings import Settings

    settings = Settings.from_env({"HARDWAY_CACHE": str(tmp_path)})
    arch, version = artifacts.host_arch(), artifacts.pinned_versions()["crictl"]
    for go in ("go1.26.0", "go1.26.1"):  # a cached build for each Go version
        built = tmp_path / "build" / f"crictl-{version}-{arch}-{build.cache_key('crictl', version, arch, go)}"
        built.mkdir(parents=True)
        (built / "crictl").write_bytes(f"\x7fELF crictl by {go}".encode())
        (built / ".complete").write_text("done\n")
    monkeypatch.setattr(build, "go_version", lambda: "go1.26.0")
    monkeypatch.setattr(build, "installed_go", lambda: build.go_version())
    packed = []
    real_package = build.package
    monkeypatch.setattr(build, "package", lambda art, b: packed.append(b.name) or real_package(art, b))
    logged: list[str] = []
    build.build(settings, logged.append, components=("crictl",))
    assert len(packed) == 1
    build.build(settings, logged.append, components=("crictl",))
    assert len(packed) == 1 and logged[-1] == f"crictl {version}: in the mirror, up to date"
    monkeypatch.setattr(build, "go_version", lambda: "go1.26.1")  # another recipe input
    build.build(settings, logged.append, components=("crictl",))
    assert len(packed) == 2


def test_without_go_the_mirror_serves_what_it_has_and_a_missing_build_names_the_fix(tmp_path,
                                                                                  monkeypatch):
    from hardway.mirror.store import Mirror
    from hardway.settings import HardwayError, Settings

    settings = Settings.from_env({"HARDWAY_CACHE": str(tmp_path)})
    arch, versions = artifacts.host_arch(), artifacts.pinned_versions()
    built = tmp_path / "build" / f"crictl-{versions['crictl']}-{arch}-" \
        f"{build.cache_key('crictl', versions['crictl'], arch, 'go1.26.0')}"
    built.mkdir(parents=True)
    (built / "crictl").write_bytes(b"\x7fELF crictl")
    (built / ".complete").write_text("done\n")
    monkeypatch.setattr(build, "go_version", lambda: "go1.26.0")
    monkeypatch.setattr(build, "installed_go", lambda: "go1.26.0")
    build.build(settings, lambda _: None, components=("crictl",))  # built on a machine with Go
    Mirror(settings.mirror).put(artifacts.artifact("runc", arch, versions["runc"]), b"official runc",
                                source="upstream")  # synced from the official release
    packed: list[str] = []
    monkeypatch.setattr(build, "package", lambda art, b: packed.append(b.name) or b"")
    logged: list[str] = []
    monkeypatch.setattr(build, "build_component", lambda *a: pytest.fail("nothing may be built"))
    build.build(settings, logged.append, components=("runc",))  # Go or not: the official one stays
    monkeypatch.setattr(build, "installed_go", lambda: None)
    build.build(settings, logged.append, components=("crictl",))
    assert logged == [f"runc {versions['runc']}: in the mirror, the official release",
                      f"crictl {versions['crictl']}: in the mirror (no Go here to check its recipe: kept)"]
    assert packed == []

    def no_go():
        raise HardwayError("asking Go for its version failed: install Go 1.26 or newer")

    monkeypatch.setattr(build, "go_version", no_go)
    with pytest.raises(HardwayError, match="install Go"):
        build.build(settings, logged.append, components=("containerd",))


def test_a_build_says_how_long_it_has_run_against_the_last_one(tmp_path, monkeypatch):
    from hardway.settings import Settings

    settings = Settings.from_env({"HARDWAY_CACHE": str(tmp_path)})
    arch = artifacts.host_arch()
    monkeypatch.setattr(build, "go_version", lambda: "go1.26.0")
    monkeypatch.setattr(build, "TICK", 0.1)

    def slow_step(step, version, arch, out, work, log, logfile):
        time.sleep(0.35)
        (out / "crictl").write_bytes(b"\x7fELF")

    monkeypatch.setattr(build, "_build_step", slow_step)
    first: list[str] = []
    build.build_component(settings, "crictl", "1.0.0", arch, first.append)
    assert first[0] == f"crictl 1.0.0: building for {arch} (logs in " \
        f"{tmp_path}/build/crictl-1.0.0-{arch}-{build.cache_key('crictl', '1.0.0', arch, 'go1.26.0')}.log)"
    assert any(re.fullmatch(r"crictl 1\.0\.0: building, 0 min 0\d s so far \(no earlier build to "
                            r"compare\)", line) for line in first), first
    assert re.fullmatch(r"crictl 1\.0\.0: built in 0 min 0\d s", first[-1])
    took = json.loads((tmp_path / "build/times.json").read_text())["crictl"]
    assert 0.3 < took < 5

    monkeypatch.setattr(build, "TICK", 0.1)
    (tmp_path / "build/times.json").write_text('{"crictl": 600}')  # the last build: 10 minutes
    second: list[str] = []
    build.build_component(settings, "crictl", "1.0.1", arch, second.append)
    assert second[0].endswith("; the last build took 10 min 00 s)")
    assert any(re.fullmatch(r"crictl 1\.0\.1: building, 0 min 0\d s so far, about 9 min 5\d s to go "
                            r"\(the last build took 10 min 00 s\)", line) for line in second), second
    (tmp_path / "build/times.json").write_text("not json")  # unreadable: no estimate, no error
    build.build_component(settings, "crictl", "1.0.2", arch, second.append)
    assert "no earlier build to compare" in second[-2]
