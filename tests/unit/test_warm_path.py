"""The warm path's decisions: from one `find` of the host, what a converge still installs."""

import pytest

from tests.conftest import filter_plugin

lab_download = filter_plugin("lab_download")

CACHE = "/var/cache/hardway-download/containerd/2.3.4/amd64/aaaaaaaaaaaa"
ARCHIVE = f"{CACHE}/containerd.tar.gz"
INSTALL = {"bin/containerd": "/usr/local/bin/containerd", "bin/ctr": "/usr/local/bin/ctr"}


def found(path: str, inode: int, uid: int = 0, mode: str = "0755", ctime: float | str = 1.5) -> dict:
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


ARTIFACTS = {"containerd": {"base": "github", "kind": "tarball",
                            "path": "containerd/v{version}/containerd-{version}-linux-{arch}.tar.gz"},
             "kubelet": {"base": "kubernetes", "kind": "binary",
                         "path": "v{version}/bin/linux/{arch}/kubelet"}}
CHECKSUMS = {"containerd": {"amd64": {"2.3.4": "sha256:" + "a" * 64}},
             "kubelet": {"amd64": {"1.36.4": "sha256:" + "b" * 64},
                         "arm64": {"1.36.4": "sha256:" + "c" * 64}}}
BASES = {"github": "http://10.0.0.1:8077/github/", "kubernetes": "http://10.0.0.1:8077/kubernetes"}
REQUESTS = [{"component": "containerd", "version": "2.3.4", "install": INSTALL},
            {"component": "kubelet", "version": "1.36.4", "install": {"kubelet": "/usr/local/bin/kubelet"}}]


def plan(requests=REQUESTS, arches=()):
    return lab_download.lab_download_plan(requests, ARTIFACTS, CHECKSUMS, BASES, "amd64", list(arches),
                                          "/var/cache/hardway-download", "/root/.cache/hd")


def test_the_plan_names_each_artifacts_url_checksum_and_cache_folder():
    containerd, kubelet = plan()
    tarball = "containerd-2.3.4-linux-amd64.tar.gz"
    assert containerd["url"] == f"http://10.0.0.1:8077/github/containerd/v2.3.4/{tarball}"
    assert containerd["dir"] == CACHE and containerd["archive"] == f"{CACHE}/{tarball}"
    assert kubelet["checksum"] == "sha256:" + "b" * 64 and kubelet["kind"] == "binary"
    assert kubelet["mode"] == "0755"


def test_an_unpinned_version_has_no_checksum_to_pass_the_preflight():
    item, = plan([{"component": "kubelet", "version": "1.99.0", "install": {}}])
    assert item["checksum"] == ""


def test_a_push_fetches_each_architecture_of_the_play_on_the_controller():
    _, kubelet = plan(arches=["amd64", "arm64"])
    assert kubelet["controller"]["arm64"] == {
        "url": "http://10.0.0.1:8077/kubernetes/v1.36.4/bin/linux/arm64/kubelet",
        "checksum": "sha256:" + "c" * 64, "path": f"/root/.cache/hd/{'c' * 12}/kubelet"}


def test_image_archives_are_requested_by_url_and_checksum():
    archives = {"pause": {"url": "http://m/images/pause-amd64.tar", "sha256": "1" * 64}}
    request, = lab_download.lab_images_requests(["pause"], {"pause": "lab.local/pause:3.10"}, archives,
                                                "/var/cache/hardway-download/images")
    item, = plan([request])
    assert (item["component"], item["version"], item["kind"], item["mode"]) == ("pause_image", "3.10",
                                                                                "binary", "0644")
    assert item["url"] == "http://m/images/pause-amd64.tar" and item["checksum"] == "sha256:" + "1" * 64
    assert item["install"] == {"pause": "/var/cache/hardway-download/images/pause.tar"}


def test_one_probe_looks_at_every_artifact_and_its_output_reads_back():
    argv = lab_download.lab_download_probe(plan(), "/var/cache/hardway-download")
    assert argv[:3] == ["find", "/var/cache/hardway-download", "/usr/local/bin"]
    assert argv[argv.index("-maxdepth") + 1] == "7"  # <4 folders>/files/bin/containerd
    names = argv[argv.index("(") + 1:argv.index(")")]
    assert {"containerd", "ctr", "kubelet", "containerd-2.3.4-linux-amd64.tar.gz",
            "installed-*"} <= set(names)
    out = "/usr/local/bin/kubelet\t100\t7\t1733190000.5\t0\t0\t755\nfind: '/opt/cni/bin': gone\n"
    assert lab_download.lab_download_found(out) == [found("/usr/local/bin/kubelet", 7, ctime="1733190000.5")]


def test_only_items_whose_record_no_longer_matches_are_fetched_again():
    containerd, kubelet = plan()
    files = host(**{ARCHIVE: found(containerd["archive"], 1, mode="0644")})
    files.append(found("/usr/local/bin/kubelet", 7))
    its_record = lab_download.lab_download_record(files, INSTALL, CACHE, containerd["archive"], "tarball")
    recorded = [*files, {"path": its_record}]
    stale = lab_download.lab_download_stale([containerd, kubelet], recorded, False)
    assert [item["component"] for item in stale] == ["kubelet"]  # its record was never written
    assert lab_download.lab_download_stale([containerd], recorded, True) == [containerd]  # pushed


def test_one_request_per_download_host():
    bases = ["http://10.0.0.1:8077/kubernetes", "http://10.0.0.1:8077/github",
             "https://dl.k8s.io", "https://github.com", "http://10.0.0.1:8078/x"]
    assert lab_download.lab_one_per_origin(bases) == [
        "http://10.0.0.1:8077/kubernetes", "https://dl.k8s.io", "https://github.com",
        "http://10.0.0.1:8078/x"]
