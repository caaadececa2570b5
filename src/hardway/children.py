"""Child processes that must not outlive hardway.

If hardway is killed (even with SIGKILL) in the middle of provisioning or a lab step,
its ansible-playbook must not go on changing nodes that the next `nodes down` removes:
the kernel sends the child SIGTERM when hardway dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def run_tied(command: list[str], cwd: Path, env: dict[str, str]) -> int:
    """Run a command in the foreground that ends when hardway ends; its exit code."""
    return subprocess.run(command, cwd=cwd, env=env, preexec_fn=die_with_parent).returncode
