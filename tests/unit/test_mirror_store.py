import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hardway import provision
from hardway.cli import main
from hardway.mirror import artifacts, store
from hardway.mirror.store import Mirror
from hardway.settings import HardwayError


def fill(root):
    mirror = Mirror(root)
    for component in artifacts.COMPONENTS:
        mirror.put(artifacts.artifact(component, "amd64"), f"{component} bytes".encode(), "built")
    mirror.put_image("lab.local/pause:3.10", "images/pause-amd64.tar", b"image bytes")
    return mirror


def test_a_complete_mirror_verifies(tmp_path):
    mirror = fill(tmp_path)
    checked, problems = mirror.verify()
    assert (checked, problems) == (len(artifacts.COMPONENTS) + 1, [])
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


def test_the_quick_verify_reads_only_files_changed_since_they_were_found_good(tmp_path, monkeypatch):
    mirror = fill(tmp_path)
    # Files changed in the last seconds are never taken as known good: these were just made.
    monkeypatch.setattr(store, "SETTLED_NS", -1)
    read = []
    real = store.sha256_file
    monkeypatch.setattr(store, "sha256_file", lambda path: read.append(path) or real(path))
    assert mirror.verify(every_byte=False)[1] == []
    assert len(read) == len(artifacts.COMPONENTS) + 1
    read.clear()
    assert mirror.verify(every_byte=False)[1] == []
    assert read == []
    # Same size and modification time, other bytes: the change time gives it away.
    kubelet = tmp_path / artifacts.artifact("kubelet", "amd64").local_path
    before = kubelet.stat()
    kubelet.write_bytes(b"kubelet byteZ")
    os.utime(kubelet, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert [p.path for p in mirror.verify(every_byte=False)[1]] == [
        artifacts.artifact("kubelet", "amd64").local_path]
    assert read == [kubelet]
    read.clear()
    assert mirror.verify()[1] and len(read) == len(artifacts.COMPONENTS) + 1


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


def run_hardway(mirror, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "hardway"), *args],
                          capture_output=True, text=True, timeout=20,
                          env=dict(os.environ, HARDWAY_MIRROR=str(mirror), NO_COLOR="1"))


GOOD = "a" * 64
MALFORMED = [
    ("checksums: [\n", "is not valid YAML (expected the node content, but found '<stream end>' at line 2)"),
    ("- checksums\n- images\n", "must be a mapping of checksums, sources and images"),
    ("checksums: {}\nimages: {}\n", "must be a mapping of checksums, sources and images"),
    (f"checksums: {{kubeadm: {{amd64: {{'3.6.0': 'sha256:{GOOD}'}}}}}}\nimages: {{}}\nsources: {{}}\n",
     "checksums: unknown component 'kubeadm'"),
    (f"checksums: {{runc: {{amd64: {{'../../../etc': 'sha256:{GOOD}'}}}}}}\nimages: {{}}\n"
     "sources: {}\n", "checksums: runc amd64: '../../../etc' is not a version"),
    ("checksums: {runc: {amd64: {'1.4.3': 'md5:00'}}}\nimages: {}\nsources: {}\n",
     "checksums: runc 1.4.3 amd64: 'md5:00' is not sha256:<64 hex>"),
    ("checksums: {}\nimages: {pause: {file: images/pause.tar}}\nsources: {}\n",
     "images: 'pause' must have a file and a sha256"),
    (f"checksums: {{}}\nimages: {{pause: {{file: ../../../../etc/hostname, sha256: {GOOD}}}}}\n"
     "sources: {}\n", "images: 'pause' names '../../../../etc/hostname', not a path inside the mirror"),
    (f"checksums: {{}}\nimages: {{pause: {{file: /etc/hostname, sha256: {GOOD}}}}}\nsources: {{}}\n",
     "images: 'pause' names '/etc/hostname', not a path inside the mirror"),
    ('checksums: {}\nimages: {"[red]x\\e[2J": 7}\nsources: {}\n',
     "images: '[red]x\\x1b[2J' must have a file and a sha256"),
]


@pytest.mark.parametrize(("text", "problem"), MALFORMED,
                         ids=["yaml", "list", "missing-key", "unknown-component", "version-dotdot",
                              "not-sha256", "image-no-sha256", "image-dotdot", "image-absolute",
                              "markup-and-escape"])
def test_a_malformed_index_is_refused_in_one_line_wherever_it_is_read(tmp_path, text, problem):
    (tmp_path / "index.yml").write_text(text)
    expected = f"error: {tmp_path / 'index.yml'}: {problem}; {store.REBUILD}\n"
    with pytest.raises(HardwayError) as raised:
        provision.mirror_vars(Mirror(tmp_path), "http://192.0.2.1:8077")
    assert f"error: {raised.value}\n" == expected
    with socket.socket() as probe:  # a free port, should serve wrongly start listening
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    for command in (["mirror", "verify"], ["mirror", "serve", "--address", "127.0.0.1", "--port", port]):
        result = run_hardway(tmp_path, *command)
        assert (result.returncode, result.stderr) == (1, expected), command


def test_an_index_that_is_a_directory_is_refused_in_one_line(tmp_path):
    (tmp_path / "index.yml").mkdir()
    result = run_hardway(tmp_path, "mirror", "verify")
    assert (result.returncode, result.stderr) == (
        1, f"error: {tmp_path / 'index.yml'}: cannot be read (Is a directory); {store.REBUILD}\n")


def test_verify_names_a_file_replaced_by_a_directory(tmp_path):
    fill(tmp_path)
    kubelet = tmp_path / artifacts.artifact("kubelet", "amd64").local_path
    kubelet.unlink()
    kubelet.mkdir()
    (tmp_path / "images/pause-amd64.tar").unlink()
    (tmp_path / "images/pause-amd64.tar").mkdir()
    result = run_hardway(tmp_path, "mirror", "verify")
    assert result.returncode == 1
    assert "BAD kubernetes/release/" in result.stderr and "kubelet: missing or not a file" in result.stderr
    assert "BAD images/pause-amd64.tar: missing or not a file" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_stamp_holds_while_the_files_and_their_inputs_stay_the_same(tmp_path):
    mirror = Mirror(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "images/a.tar").write_bytes(b"one")
    assert not mirror.fresh(["images/a.tar"], "k1")  # never stamped
    mirror.stamp(["images/a.tar"], "k1")
    assert mirror.fresh(["images/a.tar"], "k1")
    assert not mirror.fresh(["images/a.tar"], "k2")  # the inputs changed
    os.utime(tmp_path / "images/a.tar", ns=(1, 1))
    assert not mirror.fresh(["images/a.tar"], "k1")  # the file was touched since
    mirror.stamp(["images/a.tar"], "k1")
    (tmp_path / "images/a.tar").unlink()
    assert not mirror.fresh(["images/a.tar"], "k1")
