"""`hardway mirror sync` against an upstream stand-in served on loopback."""

import pytest

from hardway.mirror import artifacts, sync
from hardway.settings import HardwayError, Settings, UsageError


@pytest.fixture
def upstream(loopback):
    for art in artifacts.pinned(("amd64",)):
        loopback.publish(art, f"official {art.component} {art.arch}".encode())
    return loopback.root, loopback.bases, loopback.checksums


def settings(tmp_path) -> Settings:
    return Settings.from_env({"HARDWAY_MIRROR": str(tmp_path / "mirror")})


def test_sync_fills_a_mirror_that_verifies(tmp_path, upstream):
    _, bases, checksums = upstream
    mirror = sync.sync(settings(tmp_path), lambda _: None, bases, ("amd64",), checksums)
    assert mirror.verify() == (5, [])
    assert mirror.index()["sources"] == {c: "upstream" for c in artifacts.NODE_COMPONENTS}


def test_a_corrupted_download_is_refused_and_not_stored(tmp_path, upstream):
    root, bases, checksums = upstream
    kubelet = artifacts.artifact("kubelet", "amd64")
    (root / kubelet.base / kubelet.path).write_bytes(b"tampered")
    with pytest.raises(HardwayError, match="nothing was stored"):
        sync.sync(settings(tmp_path), lambda _: None, bases, ("amd64",), checksums)
    assert not (tmp_path / "mirror" / kubelet.local_path).exists()


def test_an_unpinned_version_is_refused_before_any_download(tmp_path, upstream):
    _, bases, checksums = upstream
    runc = artifacts.pinned_versions()["runc"]
    del checksums["runc"]["amd64"][runc]
    with pytest.raises(UsageError, match=f"no upstream checksum is pinned for runc {runc}"):
        sync.sync(settings(tmp_path), lambda _: None, bases, ("amd64",), checksums)
    assert not (tmp_path / "mirror").exists()


def test_an_unreachable_upstream_says_so(tmp_path, upstream):
    _, _, checksums = upstream
    dead = {"kubernetes": "http://127.0.0.1:9", "github": "http://127.0.0.1:9"}
    with pytest.raises(HardwayError, match="cannot download"):
        sync.sync(settings(tmp_path), lambda _: None, dead, ("amd64",), checksums)


def test_a_malformed_index_is_refused_before_any_download(tmp_path, upstream):
    _, bases, checksums = upstream
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "index.yml").write_text("- not\n- a mapping\n")
    fetched = []
    with pytest.raises(HardwayError, match=r"index\.yml: must be a mapping of checksums"):
        sync.sync(settings(tmp_path), fetched.append, bases, ("amd64",), checksums)
    assert fetched == []
