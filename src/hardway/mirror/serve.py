"""Serve the mirror over HTTP to the lab nodes, in the foreground or as a background
process that `hardway up` starts and `hardway nodes down` stops."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from hardway.mirror.store import Mirror
from hardway.settings import HardwayError, Settings


class LoggingHandler(SimpleHTTPRequestHandler):
    """Requests go to stderr (the background server's log file), one line each."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def serve_forever(directory: Path, address: str, port: int) -> None:
    mirror = Mirror(directory)
    if not mirror.index_path.exists():
        raise HardwayError(f"{directory} holds no mirror: run `hardway mirror build` first")
    mirror.index()  # refuses a malformed index, saying how to fix it
    handler = functools.partial(LoggingHandler, directory=str(directory))
    try:
        server = ThreadingHTTPServer((address, port), handler)
    except OSError as exc:
        raise HardwayError(f"cannot listen on {address}:{port}: {exc.strerror}; set "
                           "HARDWAY_MIRROR_PORT to a free port") from None
    server.serve_forever()


def pidfile(settings: Settings) -> Path:
    return settings.state / "mirror-serve.pid"


def running(settings: Settings) -> int | None:
    path = pidfile(settings)
    if not path.exists():
        return None
    pid = int(path.read_text().split()[0])
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if b"hardway.mirror.serve" in cmdline else None


def start_background(settings: Settings) -> str:
    """Serve the mirror on the lab bridge until stopped; returns the URL nodes use."""
    url = settings.mirror_url
    if running(settings) is None:
        settings.state.mkdir(parents=True, exist_ok=True)
        log = (settings.state / "mirror-serve.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "hardway.mirror.serve", str(settings.mirror),
             str(settings.host_address), str(settings.mirror_port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        pidfile(settings).write_text(f"{process.pid}\n")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/index.yml", timeout=1).close()
            return url
        except OSError:
            time.sleep(0.1)
    stop_background(settings)
    raise HardwayError(f"the mirror server did not answer at {url}; see "
                       f"{settings.state / 'mirror-serve.log'}")


def stop_background(settings: Settings) -> None:
    pid = running(settings)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if running(settings) is None:
                break
            time.sleep(0.1)
    pidfile(settings).unlink(missing_ok=True)


if __name__ == "__main__":
    serve_forever(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
