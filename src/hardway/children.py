"""The tools hardway runs (Ansible, pytest), the environment they run in, and child
processes that must not outlive hardway.

If hardway is killed (even with SIGKILL) in the middle of provisioning or a lab step,
its ansible-playbook must not go on changing nodes that the next `nodes down` removes:
the kernel sends the child SIGTERM when hardway dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

from hardway.settings import REPO

PR_SET_PDEATHSIG = 1


def tool(name: str) -> str:
    """A command installed beside this Python (ansible-playbook, pytest...), venv active or not."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def ansible_env(events: Path | None = None) -> dict[str, str]:
    """Environment for Ansible, and for testinfra (which runs ansible-inventory): the
    repository's ansible.cfg, the tools beside this Python first on PATH. With events, the
    hardway_progress callback (callback_plugins/) appends its JSON lines to that file."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    if events is not None:
        env.update(ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_CALLBACKS_ENABLED="hardway_progress",
                   HARDWAY_PROGRESS_FILE=str(events))
    return env


def die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def run_tied(command: list[str], cwd: Path, env: dict[str, str]) -> int:
    """Run a command in the foreground that ends when hardway ends; its exit code."""
    return subprocess.run(command, cwd=cwd, env=env, preexec_fn=die_with_parent).returncode
