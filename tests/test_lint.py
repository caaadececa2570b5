"""Lint as tests, so the one test command covers it: ruff, mypy, yamllint, ansible-lint."""

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env)


def test_python_is_ruff_clean():
    result = run(str(BIN / "ruff"), "check", "src", "tests", "labs", "library", "filter_plugins", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_python_types_check_with_mypy():
    # What it checks is in pyproject.toml ([tool.mypy]): the package, tests, lab checks,
    # plugins and benchmarks.
    result = run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_yaml_is_yamllint_strict_clean():
    result = run(str(BIN / "yamllint"), "--strict", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ansible_is_lint_clean_at_the_production_profile():
    result = run(str(BIN / "ansible-lint"), "--profile", "production", "--offline")
    assert result.returncode == 0, result.stdout + result.stderr
