import pytest

from hardway.mirror import artifacts


def test_every_component_has_a_spec_and_a_pinned_version():
    assert set(artifacts.specs()) == set(artifacts.COMPONENTS)
    versions = artifacts.pinned_versions()
    assert versions == {"kubelet": "1.37.2", "containerd": "2.4.2", "runc": "1.5.2",
                        "cni_plugins": "1.10.0", "crictl": "1.37.0"}


@pytest.mark.parametrize(("component", "arch", "path"), [
    ("kubelet", "arm64", "kubernetes/release/v1.37.2/bin/linux/arm64/kubelet"),
    ("containerd", "amd64", "github/containerd/containerd/releases/download/v2.4.2/"
                            "containerd-2.4.2-linux-amd64.tar.gz"),
    ("runc", "amd64", "github/opencontainers/runc/releases/download/v1.5.2/runc.amd64"),
    ("cni_plugins", "arm64", "github/containernetworking/plugins/releases/download/v1.10.0/"
                             "cni-plugins-linux-arm64-v1.10.0.tgz"),
    ("crictl", "amd64", "github/kubernetes-sigs/cri-tools/releases/download/v1.37.0/"
                        "crictl-v1.37.0-linux-amd64.tar.gz"),
])
def test_mirror_paths_follow_the_official_download_urls(component, arch, path):
    assert artifacts.artifact(component, arch).local_path == path


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


def test_upstream_checksums_are_well_formed():
    for component, by_arch in artifacts.upstream_checksums().items():
        assert component in artifacts.COMPONENTS
        for arch, by_version in by_arch.items():
            assert arch in artifacts.ARCHES
            for value in (by_version or {}).values():
                assert str(value).startswith("sha256:") and len(str(value)) == 71
