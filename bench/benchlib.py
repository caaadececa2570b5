"""What the benchmark scripts share: run `hardway` on a lab of their own and time it."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def hardway(env: dict[str, str], *args: str, check: bool = True) -> float:
    """Seconds `hardway ARGS` took with env's lab settings; exits with its output on failure."""
    start = time.monotonic()
    result = subprocess.run([str(BIN / "hardway"), *args], capture_output=True, text=True,
                            env=dict(os.environ, **env, NO_COLOR="1", COLUMNS="200"))
    if check and result.returncode != 0:
        sys.exit(f"hardway {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return time.monotonic() - start


def cpu_seconds() -> float:
    """CPU time (user + system) of every finished child so far: hardway, Ansible, ssh."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
