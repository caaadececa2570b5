"""Every child process hardway runs, and the tools and environment they run with.

One way to run a child, like kind's pkg/exec: `run` waits for it, `start` leaves it
running. A child that cannot start, fails or overstays its timeout raises ChildError,
whose message is one line: what failed, how, the last thing the child said, and the fix.

If hardway is killed (even with SIGKILL) in the middle of provisioning or a lab step,
its ansible-playbook must not go on changing nodes that the next `nodes down` removes:
a `tied` child gets SIGTERM from the kernel when hardway dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from hardway.settings import REPO, HardwayError

PR_SET_PDEATHSIG = 1
# What to install when a program is missing (Debian package names).
PACKAGES = {
    "ssh": "openssh-client", "ssh-keygen": "openssh-client", "ip": "iproute2",
    "systemctl": "systemd", "systemd-run": "systemd", "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap", "gcc": "gcc libc6-dev", "ldd": "libc-bin",
    "go": "Go 1.26 or newer (or fill the mirror with `hardway mirror sync`)", "busybox": "busybox-static",
}
# Installed with hardway itself, beside its Python.
PYTHON_TOOLS = ("ansible", "ansible-playbook", "ansible-inventory", "pytest")


class ChildError(HardwayError):
    """A child process could not start, failed or timed out; the message is one line."""


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


def _text(data: str | bytes | None) -> str:
    # TimeoutExpired carries bytes even when the child ran in text mode.
    return data.decode(errors="replace") if isinstance(data, bytes) else data or ""


def last_line(text: str) -> str:
    """The last non-blank line, whitespace collapsed and cut short: a child's last words."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    line = next((line for line in reversed(lines) if line), "")
    return line if len(line) <= 200 else line[:199] + "…"


def _error(what: str, program: str, how: str, said: str, fix: str) -> ChildError:
    message = f"{what} failed: {program} {how}"
    if said:
        message += f": {said}"
    return ChildError(f"{message}; {fix}" if fix else message)


def _cannot_start(what: str, command: list[str], exc: Exception) -> ChildError:
    program = Path(command[0]).name
    if isinstance(exc, FileNotFoundError) and exc.filename in (command[0], None):
        install = ("reinstall hardway-lab with its dependencies (pip install -e .)"
                   if program in PYTHON_TOOLS else
                   f"install {PACKAGES.get(program, f'the package that provides {program}')}")
        return _error(what, program, "is not installed", "", install)
    reason = str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        reason = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return _error(what, program, "could not be started", reason, "")


def _tail(log: Path, offset: int) -> str:
    """What the child added to its log file, or "" when the file is gone."""
    try:
        with log.open("rb") as file:
            file.seek(offset)
            return file.read().decode(errors="replace")
    except OSError:
        return ""


def run(command: list[str], *, what: str, fix: str = "", check: bool = True,
        timeout: float | None = None, capture: bool = True, log: Path | None = None,
        cwd: Path | None = None, env: dict[str, str] | None = None,
        tied: bool = False) -> subprocess.CompletedProcess[str]:
    """Run a command to its end. `what` names the step for the error ("reading the
    inventory ..."), `fix` says what to do when it fails.

    Output is captured as text (capture), appended to a log file (log), or left on the
    terminal (capture=False). With check=False the caller judges the result, a timeout
    included (the child is killed: returncode -9); only a child that cannot start raises."""
    output: IO[bytes] | int | None = None
    logfile: IO[bytes] | None = None
    offset = 0
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        output = logfile = log.open("ab")
        offset = logfile.tell()
    elif capture:
        output = subprocess.PIPE
    program = Path(command[0]).name
    try:
        result = subprocess.run(command, cwd=cwd, env=env, timeout=timeout, text=True,
                                errors="replace", stdin=subprocess.DEVNULL if capture else None,
                                stdout=output,
                                stderr=subprocess.STDOUT if log is not None else output,
                                preexec_fn=die_with_parent if tied else None)
    except subprocess.TimeoutExpired as exc:
        said = _tail(log, offset) if log is not None else _text(exc.stderr) or _text(exc.stdout)
        if check:
            raise _error(what, program, f"timed out after {timeout:g} s", last_line(said), fix) \
                from None
        said = f"{said}\n{program} timed out after {timeout:g} s"
        return subprocess.CompletedProcess(command, -signal.SIGKILL, _text(exc.stdout), said)
    except (OSError, subprocess.SubprocessError) as exc:
        raise _cannot_start(what, command, exc) from None
    finally:
        if logfile is not None:
            logfile.close()
    if check and result.returncode != 0:
        said = _tail(log, offset) if log is not None else result.stderr or result.stdout or ""
        raise _error(what, program, f"exited {result.returncode}", last_line(said), fix)
    return result


def json_output(result: subprocess.CompletedProcess[str], *, what: str, fix: str = "") -> Any:
    """The JSON a child printed on stdout; output that is not JSON is a ChildError too."""
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise _error(what, Path(result.args[0]).name, f"printed no JSON ({exc.msg})",
                     last_line(result.stdout or result.stderr), fix) from None


def run_json(command: list[str], *, what: str, fix: str = "", **options: Any) -> Any:
    """run, then the JSON the command printed."""
    return json_output(run(command, what=what, fix=fix, **options), what=what, fix=fix)


def start(command: list[str], *, what: str, log: Path, cwd: Path | None = None,
          env: dict[str, str] | None = None, tied: bool = False, session: bool = False,
          preexec: Callable[[], None] | None = None) -> subprocess.Popen:
    """Start a long-running command in the background, its output appended to log. A tied
    child ends when hardway ends; one in its own session outlives it. preexec runs in the
    child before the command (to join cgroups, say)."""

    def prepare() -> None:
        if tied:
            die_with_parent()
        if preexec is not None:
            preexec()

    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:  # the child keeps its own copy of the handle
        try:
            return subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                    stdout=output, stderr=subprocess.STDOUT,
                                    start_new_session=session,
                                    preexec_fn=prepare if tied or preexec else None)
        except (OSError, subprocess.SubprocessError) as exc:
            raise _cannot_start(what, command, exc) from None
