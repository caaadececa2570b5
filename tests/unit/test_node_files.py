"""library/node_files.py, the module that writes a role's files in one run: run as Ansible
runs it (a module given its arguments in a file), on a scratch folder of this host."""

from __future__ import annotations

import grp
import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

MODULE = REPO / "library" / "node_files.py"
ME = {"owner": pwd.getpwuid(os.getuid()).pw_name, "group": grp.getgrgid(os.getgid()).gr_name}


def node_files(tmp_path: Path, entries: list[dict], check: bool = False, diff: bool = False) -> dict:
    arguments = {"files": [dict(ME, **entry) for entry in entries],
                 "_ansible_check_mode": check, "_ansible_diff": diff,
                 "_ansible_tmpdir": str(tmp_path)}
    args_file = tmp_path.parent / f"{tmp_path.name}-args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": arguments}))
    result = subprocess.run([sys.executable, str(MODULE), str(args_file)],
                            capture_output=True, text=True)
    return json.loads(result.stdout)


def test_writes_directories_and_files_then_changes_nothing(tmp_path):
    folder, config, secret = tmp_path / "etc", tmp_path / "etc" / "a.conf", tmp_path / "etc" / "key"
    entries = [{"path": str(folder), "state": "directory"},
               {"path": str(config), "content": "a = 1\n"},
               {"path": str(secret), "content": "s\n", "mode": "0600"}]
    first = node_files(tmp_path, entries)
    assert first["changed"] and first["changed_paths"] == [str(folder), str(config), str(secret)]
    assert config.read_text() == "a = 1\n" and secret.read_text() == "s\n"
    assert (folder.stat().st_mode & 0o777, config.stat().st_mode & 0o777,
            secret.stat().st_mode & 0o777) == (0o755, 0o644, 0o600)
    again = node_files(tmp_path, entries)
    assert not again["changed"] and again["changed_paths"] == []
    assert not [name for name in os.listdir(folder) if name.startswith(".node_files.")]


def test_changes_only_what_differs_and_keeps_a_backup_when_asked(tmp_path):
    config, unit = tmp_path / "config.toml", tmp_path / "x.service"
    node_files(tmp_path, [{"path": str(config), "content": "old\n"}, {"path": str(unit), "content": "u\n"}])
    unit_inode = unit.stat().st_ino
    result = node_files(tmp_path, [{"path": str(config), "content": "new\n", "backup": True},
                                   {"path": str(unit), "content": "u\n"}])
    assert result["changed_paths"] == [str(config)]
    assert config.read_text() == "new\n" and unit.stat().st_ino == unit_inode
    assert Path(result["backups"][str(config)]).read_text() == "old\n"


def test_a_mode_alone_is_put_right(tmp_path):
    config = tmp_path / "a.conf"
    node_files(tmp_path, [{"path": str(config), "content": "x\n"}])
    config.chmod(0o666)
    result = node_files(tmp_path, [{"path": str(config), "content": "x\n"}])
    assert result["changed"] and config.stat().st_mode & 0o777 == 0o644


def test_absent_removes_a_file_and_is_quiet_when_nothing_is_there(tmp_path):
    stale = tmp_path / "kubeconfig"
    stale.write_text("old\n")
    assert node_files(tmp_path, [{"path": str(stale), "state": "absent"}])["changed"]
    assert not stale.exists()
    assert not node_files(tmp_path, [{"path": str(stale), "state": "absent"}])["changed"]


def test_check_mode_reports_and_touches_nothing(tmp_path):
    config, folder = tmp_path / "a.conf", tmp_path / "new"
    config.write_text("old\n")
    result = node_files(tmp_path, [{"path": str(folder), "state": "directory"},
                                   {"path": str(config), "content": "new\n"}], check=True, diff=True)
    assert result["changed_paths"] == [str(folder), str(config)]
    assert config.read_text() == "old\n" and not folder.exists()
    assert {"before": "old\n", "after": "new\n"}.items() <= result["diff"][1].items()


def test_refuses_to_write_over_what_is_not_a_file(tmp_path):
    (tmp_path / "a.conf").mkdir()
    result = node_files(tmp_path, [{"path": str(tmp_path / "a.conf"), "content": "x\n"}])
    assert result["failed"] and "not a regular file" in result["msg"]
