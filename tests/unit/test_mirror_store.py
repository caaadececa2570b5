import hashlib

from click.testing import CliRunner

from hardway.cli import main
from hardway.mirror import artifacts
from hardway.mirror.store import Mirror


def fill(root):
    mirror = Mirror(root)
    for component in artifacts.COMPONENTS:
        mirror.put(artifacts.artifact(component, "amd64"), f"{component} bytes".encode(), "built")
    mirror.put_image("lab.local/pause:3.10", "images/pause-amd64.tar", b"image bytes")
    return mirror


def test_a_complete_mirror_verifies(tmp_path):
    mirror = fill(tmp_path)
    checked, problems = mirror.verify()
    assert (checked, problems) == (6, [])
    index = mirror.index()
    digest = hashlib.sha256(b"kubelet bytes").hexdigest()
    kubelet = artifacts.pinned_versions()["kubelet"]
    assert index["checksums"]["kubelet"]["amd64"][kubelet] == f"sha256:{digest}"
    assert index["sources"]["kubelet"] == "built"


def test_verify_names_a_corrupted_and_a_missing_file(tmp_path):
    mirror = fill(tmp_path)
    kubelet = artifacts.artifact("kubelet", "amd64")
    (tmp_path / kubelet.local_path).write_bytes(b"tampered")
    (tmp_path / "images/pause-amd64.tar").unlink()
    _, problems = mirror.verify()
    assert {p.path for p in problems} == {kubelet.local_path, "images/pause-amd64.tar"}


def test_verify_catches_a_checksum_file_that_disagrees(tmp_path):
    mirror = fill(tmp_path)
    containerd = artifacts.artifact("containerd", "amd64")
    (tmp_path / containerd.local_checksum_path).write_text(f"{'0' * 64}  {containerd.filename}\n")
    _, problems = mirror.verify()
    assert [p.path for p in problems] == [containerd.local_checksum_path]


def test_verify_command_exits_1_and_names_the_bad_file(tmp_path):
    fill(tmp_path)
    (tmp_path / artifacts.artifact("runc", "amd64").local_path).write_bytes(b"x")
    result = CliRunner().invoke(main, ["mirror", "verify"], env={"HARDWAY_MIRROR": str(tmp_path)})
    assert result.exit_code == 1
    assert "runc.amd64" in result.output


def test_verify_command_on_an_empty_directory_says_how_to_fill_it(tmp_path):
    result = CliRunner().invoke(main, ["mirror", "verify"], env={"HARDWAY_MIRROR": str(tmp_path)})
    assert result.exit_code == 1
    assert "hardway mirror build" in result.output


def test_putting_the_same_bytes_again_changes_nothing(tmp_path):
    mirror = fill(tmp_path)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    fill(tmp_path)
    after = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    assert before == after
    assert mirror.verify()[1] == []
