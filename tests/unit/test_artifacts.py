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
])
def test_mirror_paths_follow_the_official_download_urls(component, arch, path):
    expected = path.format(**artifacts.pinned_versions())
    assert artifacts.artifact(component, arch).local_path == expected


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


def test_every_pinned_default_has_an_upstream_checksum_for_both_arches():
    checksums = artifacts.upstream_checksums()
    for component, version in artifacts.pinned_versions().items():
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
