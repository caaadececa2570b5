"""`hardway versions`: the pinned map, and pinning a release from its published checksum
files, served by the loopback stand-in with the official layout."""

import json
import shutil

import pytest
import yaml
from click.testing import CliRunner

from hardway import versions
from hardway.cli import main
from hardway.mirror import artifacts
from hardway.settings import HardwayError, UsageError

NEW = "1.0.9"  # older than every default: the map must sort it first


@pytest.fixture
def checksums(tmp_path, monkeypatch):
    """A copy of the pinned map that the test may change."""
    path = tmp_path / "checksums.yml"
    shutil.copy(versions.CHECKSUMS, path)
    monkeypatch.setattr(versions, "CHECKSUMS", path)
    return path


def publish(loopback, component, arches=artifacts.ARCHES):
    for arch in arches:
        loopback.publish(artifacts.artifact(component, arch, NEW), f"{component} {arch}".encode())
    return loopback.bases[artifacts.specs()[component]["base"]]


def test_the_file_is_kept_in_its_own_layout():
    header, data = versions.load()
    assert header.startswith("---\n# Official release checksums")
    assert versions.render(header, data) == versions.CHECKSUMS.read_text()


@pytest.mark.parametrize("component", artifacts.COMPONENTS)
def test_add_pins_both_arches_from_the_published_files(loopback, checksums, component):
    before = checksums.read_text()
    base = publish(loopback, component)
    added = versions.add(component, f"v{NEW}", base, checksums)
    assert added == {arch: loopback.checksums[component][arch][NEW] for arch in artifacts.ARCHES}
    header, data = versions.load(checksums)
    assert before.startswith(header) and header
    for arch in artifacts.ARCHES:
        pinned = data[component][arch]
        assert pinned[NEW] == added[arch]
        assert list(pinned) == sorted(pinned, key=lambda v: tuple(map(int, v.split("."))))
    # Nothing else moved: dropping the new entries gives the old file back.
    for arch in artifacts.ARCHES:
        del data[component][arch][NEW]
    assert versions.render(header, data) == before
    assert versions.add(component, NEW, base, checksums) == added  # again: no change
    assert yaml.safe_load(checksums.read_text())[versions.KEY][component]["amd64"][NEW] == added["amd64"]


def test_one_arch_missing_pins_nothing(loopback, checksums):
    before = checksums.read_text()
    base = publish(loopback, "crictl", ("amd64",))
    with pytest.raises(HardwayError, match=r"(?i)cannot download .*arm64.*not found"):
        versions.add("crictl", NEW, base, checksums)
    assert checksums.read_text() == before


def test_a_checksum_file_without_a_digest_pins_nothing(loopback, checksums):
    before = checksums.read_text()
    base = publish(loopback, "containerd")
    art = artifacts.artifact("containerd", "arm64", NEW)
    (loopback.root / art.local_checksum_path).write_text("<html>rate limited</html>\n")
    with pytest.raises(HardwayError, match=f"states no sha256 for containerd-{NEW}-linux-arm64"):
        versions.add("containerd", NEW, base, checksums)
    assert checksums.read_text() == before


def test_a_pinned_value_is_never_silently_replaced(loopback, checksums):
    base = publish(loopback, "runc")
    versions.add("runc", NEW, base, checksums)
    pinned = checksums.read_text()
    publish_other = artifacts.artifact("runc", "amd64", NEW)
    loopback.publish(publish_other, b"a different runc")
    with pytest.raises(HardwayError, match="nothing was changed"):
        versions.add("runc", NEW, base, checksums)
    assert checksums.read_text() == pinned


@pytest.mark.parametrize(("component", "version", "fragment"), [
    ("kubeadm", NEW, "unknown component kubeadm"),
    ("kubelet", "1.36", "must look like 1.2.3"),
])
def test_bad_input_is_a_usage_error(checksums, component, version, fragment):
    with pytest.raises(UsageError, match=fragment):
        versions.add(component, version, "http://127.0.0.1:9", checksums)


def test_list_shows_defaults_and_pinned_versions(loopback, checksums):
    versions.add("kubelet", NEW, publish(loopback, "kubelet"), checksums)
    result = CliRunner().invoke(main, ["versions", "list", "--output", "json"])
    assert result.exit_code == 0, result.output
    rows = {row["component"]: row for row in json.loads(result.output)}
    assert set(rows) == set(artifacts.COMPONENTS)
    default = artifacts.pinned_versions()["kubelet"]
    assert rows["kubelet"]["default"] == default
    assert rows["kubelet"]["arm64"].split() == [NEW, default]
    assert {c for c, row in rows.items() if row["default verified"] == "NO"} == {
        "kube_apiserver", "kube_controller_manager", "kube_scheduler"}


def test_list_fails_when_a_default_is_not_pinned(checksums):
    header, data = versions.load(checksums)
    del data["runc"]["arm64"][artifacts.pinned_versions()["runc"]]
    checksums.write_text(versions.render(header, data))
    result = CliRunner().invoke(main, ["versions", "list", "--output", "json"])
    assert result.exit_code == 1
    unverified = {r["component"] for r in json.loads(result.stdout) if r["default verified"] == "NO"}
    assert unverified - set(artifacts.CONTROL_PLANE_COMPONENTS) == {"runc"}


def test_list_passes_when_only_the_optional_control_plane_is_unverified(checksums):
    result = CliRunner().invoke(main, ["versions", "list"])
    assert result.exit_code == 0, result.output
    assert "not verified: kube_apiserver, kube_controller_manager, kube_scheduler" in result.output


def test_cli_add_prints_the_pinned_values_and_errors_in_one_line(loopback, checksums):
    base = publish(loopback, "cni_plugins")
    result = CliRunner().invoke(main, ["versions", "add", "cni_plugins", NEW, "--base", base])
    assert result.exit_code == 0, result.output
    assert loopback.checksums["cni_plugins"]["arm64"][NEW] in result.output
    result = CliRunner().invoke(main, ["versions", "add", "cni_plugins", "1.0.0", "--base", base])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot download") and result.stderr.count("\n") == 1
