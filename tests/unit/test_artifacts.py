import re

import pytest

from hardway.mirror import artifacts

SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")


def test_every_component_has_a_spec_and_a_pinned_version():
    assert set(artifacts.specs()) == set(artifacts.COMPONENTS)
    versions = artifacts.pinned_versions()
    assert set(versions) == set(artifacts.COMPONENTS)
    for component, version in versions.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), (component, version)


@pytest.mark.parametrize(("component", "arch", "path"), [
    ("kubelet", "arm64", "kubernetes/release/v{kubelet}/bin/linux/arm64/kubelet"),
    ("containerd", "amd64", "github/containerd/containerd/releases/download/v{containerd}/"
                            "containerd-{containerd}-linux-amd64.tar.gz"),
    ("runc", "amd64", "github/opencontainers/runc/releases/download/v{runc}/runc.amd64"),
    ("cni_plugins", "arm64", "github/containernetworking/plugins/releases/download/v{cni_plugins}/"
                             "cni-plugins-linux-arm64-v{cni_plugins}.tgz"),
    ("crictl", "amd64", "github/kubernetes-sigs/cri-tools/releases/download/v{crictl}/"
                        "crictl-v{crictl}-linux-amd64.tar.gz"),
    ("etcd", "arm64", "github/etcd-io/etcd/releases/download/v{etcd}/etcd-v{etcd}-linux-arm64.tar.gz"),
    ("kube_apiserver", "amd64", "kubernetes/release/v{kube_apiserver}/bin/linux/amd64/kube-apiserver"),
    ("kubectl", "arm64", "kubernetes/release/v{kubectl}/bin/linux/arm64/kubectl"),
])
def test_mirror_paths_follow_the_official_download_urls(component, arch, path):
    expected = path.format(**artifacts.pinned_versions())
    assert artifacts.artifact(component, arch).local_path == expected


def test_tarball_members_name_their_version_and_arch():
    etcd = artifacts.artifact("etcd", "arm64", "3.6.8")
    assert etcd.files == ("etcd-v3.6.8-linux-arm64/etcd", "etcd-v3.6.8-linux-arm64/etcdctl")


def test_the_control_plane_is_wanted_only_when_asked_for():
    assert artifacts.wanted(False) == artifacts.NODE_COMPONENTS
    assert set(artifacts.wanted(True)) == set(artifacts.NODE_COMPONENTS) | {
        "etcd", "kube_apiserver", "kube_controller_manager", "kube_scheduler", "kubectl"}
    assert artifacts.pinned_versions()["kubectl"] == artifacts.pinned_versions()["kube_apiserver"]


def test_bare_checksum_files_hold_only_the_digest():
    kubelet = artifacts.artifact("kubelet", "amd64")
    text = kubelet.checksum_text("ab" * 32)
    assert text == "ab" * 32 + "\n"
    assert kubelet.digest_from(text) == "ab" * 32


def test_sha256sum_files_keep_other_architectures():
    amd, arm = artifacts.artifact("runc", "amd64"), artifacts.artifact("runc", "arm64")
    text = amd.checksum_text("aa" * 32)
    text = arm.checksum_text("bb" * 32, text)
    text = amd.checksum_text("cc" * 32, text)  # a rebuild replaces only its own line
    assert text.splitlines() == [f"{'cc' * 32}  runc.amd64", f"{'bb' * 32}  runc.arm64"]
    assert amd.digest_from(text) == "cc" * 32
    assert arm.digest_from(text) == "bb" * 32
    assert amd.digest_from("garbage") is None


# No official checksum of these could be found offline (docs/mirror.md): a connected play
# refuses them until `hardway versions add` pins them; a built mirror brings its own.
UNPINNED = {"kube_apiserver", "kube_controller_manager", "kube_scheduler"}


def test_only_the_documented_components_lack_an_upstream_checksum():
    checksums = artifacts.upstream_checksums()
    versions = artifacts.pinned_versions()
    assert not any(versions[c] in checksums.get(c, {}).get(a, {})
                   for c in UNPINNED for a in artifacts.ARCHES)


def test_every_pinned_default_has_an_upstream_checksum_for_both_arches():
    checksums = artifacts.upstream_checksums()
    for component, version in artifacts.pinned_versions().items():
        if component in UNPINNED:
            continue
        for arch in artifacts.ARCHES:
            value = checksums.get(component, {}).get(arch, {}).get(version)
            assert value is not None, f"no checksum for {component} {version} {arch}"
            assert SHA256.match(str(value)), (component, arch, value)


def test_every_upstream_checksum_is_well_formed():
    checksums = artifacts.upstream_checksums()
    assert set(checksums) <= set(artifacts.COMPONENTS)
    for by_arch in checksums.values():
        assert set(by_arch) <= set(artifacts.ARCHES)
        for by_version in by_arch.values():
            assert by_version, "an architecture with no versions"
            for version, value in by_version.items():
                assert re.fullmatch(r"\d+\.\d+\.\d+", str(version)), version
                assert SHA256.match(str(value)), value
