"""The warm path's decisions: from one `find` of the host, what a converge still installs."""

import pytest

from tests.conftest import filter_plugin

lab_download = filter_plugin("lab_download")

CACHE = "/var/cache/hardway-download/containerd/2.3.4/amd64/aaaaaaaaaaaa"
ARCHIVE = f"{CACHE}/containerd.tar.gz"
INSTALL = {"bin/containerd": "/usr/local/bin/containerd", "bin/ctr": "/usr/local/bin/ctr"}


def found(path: str, inode: int, uid: int = 0, mode: str = "0755", ctime: float = 1.5) -> dict:
    return {"path": path, "size": 100, "inode": inode, "ctime": ctime, "uid": uid, "gid": 0,
            "mode": mode}


def host(**changes) -> list[dict]:
    files = {ARCHIVE: found(ARCHIVE, 1, mode="0644"),
             "tree_containerd": found(f"{CACHE}/files/bin/containerd", 2),
             "tree_ctr": found(f"{CACHE}/files/bin/ctr", 3),
             "containerd": found("/usr/local/bin/containerd", 4),
             "ctr": found("/usr/local/bin/ctr", 5)}
    files.update(changes)
    return [f for f in files.values() if f]


def record(files: list[dict], kind: str = "tarball", install: dict = INSTALL) -> str:
    return lab_download.lab_download_record(files, install, CACHE, ARCHIVE, kind)


def test_the_record_names_the_files_it_was_made_from():
    assert record(host()) == record(host())
    assert record(host()).startswith(f"{CACHE}/installed-")


@pytest.mark.parametrize("change", [
    {"ctr": found("/usr/local/bin/ctr", 6)},                    # replaced
    {"ctr": found("/usr/local/bin/ctr", 5, ctime=2.5)},         # written in place
    {"tree_ctr": found(f"{CACHE}/files/bin/ctr", 3, ctime=2.5)},
    {ARCHIVE: found(ARCHIVE, 1, mode="0644", ctime=2.5)},       # cached archive touched
], ids=["replaced", "written", "member-written", "archive-written"])
def test_any_change_to_a_file_voids_the_record(change):
    assert record(host(**change)) not in ("", record(host()))


@pytest.mark.parametrize("change", [
    {"ctr": None}, {"tree_ctr": None}, {ARCHIVE: None},
    {"ctr": found("/usr/local/bin/ctr", 5, mode="0644")},
    {"ctr": found("/usr/local/bin/ctr", 5, uid=1000)},
], ids=["missing", "member-missing", "archive-missing", "mode", "owner"])
def test_a_missing_or_wrongly_owned_file_has_no_record(change):
    assert record(host(**change)) == ""


def test_a_binary_needs_only_its_destination():
    install = {"kubelet": "/usr/local/bin/kubelet"}
    assert record([found("/usr/local/bin/kubelet", 7)], "binary", install) != ""
    assert record([], "binary", install) == ""


def test_earlier_records_are_found_in_the_cache_only():
    files = [{"path": f"{CACHE}/installed-abc"}, {"path": "/usr/local/bin/installed-x"},
             {"path": f"{CACHE}/files/bin/ctr"}]
    assert lab_download.lab_download_records(files, CACHE + "/") == [f"{CACHE}/installed-abc"]


def test_image_archives_are_verified_by_name_and_sha256():
    archives = {"pause": {"url": "u", "sha256": "1" * 64}, "nginx": {"url": "u", "sha256": "2" * 64}}
    cache = "/var/cache/hardway-download/images/"
    good = [{"path": f"{cache}pause-{'1' * 12}.tar", "checksum": "1" * 64},
            {"path": f"{cache}nginx-{'2' * 12}.tar", "checksum": "3" * 64}]
    assert lab_download.lab_images_unverified(good, archives, ["pause", "nginx"], cache) == ["nginx"]
    assert lab_download.lab_images_unverified([], archives, ["pause"], cache) == ["pause"]


def test_one_request_per_download_host():
    bases = ["http://10.0.0.1:8077/kubernetes", "http://10.0.0.1:8077/github",
             "https://dl.k8s.io", "https://github.com", "http://10.0.0.1:8078/x"]
    assert lab_download.lab_one_per_origin(bases) == [
        "http://10.0.0.1:8077/kubernetes", "https://dl.k8s.io", "https://github.com",
        "http://10.0.0.1:8078/x"]
