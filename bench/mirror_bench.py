"""`hardway mirror serve` under idle connections: prints figures, asserts nothing.

    .venv/bin/python bench/mirror_bench.py [--idle 0 300 1000 3000] [--nofile 1024]

Serves a small mirror on 127.0.0.1 (a background `python -m hardway.mirror.serve`), opens
IDLE connections that send nothing and keeps them open, then times normal
`GET /index.yml` requests from a fresh connection each. Printed per row: idle connections
opened, how many the server had closed by the end, the server's threads, and p50/max
latency of the normal requests (a request that got no answer within 5 s counts as
"timeout"; after 3 the row stops). With --nofile the server runs with that open-file
limit (soft and hard), as on a machine whose default is 1024. The goal: every normal
request answered within 1 s while 1,000 idle connections are held (a figure printed here;
the unit test asserts only that requests are not queued behind idle connections).
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REQUESTS = 20
TIMEOUT = 5.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(root: Path, port: int, nofile: int | None) -> subprocess.Popen:
    def limit() -> None:
        if nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    server = subprocess.Popen([sys.executable, "-m", "hardway.mirror.serve", str(root),
                               "127.0.0.1", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, preexec_fn=limit)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/index.yml", timeout=1).close()
            return server
        time.sleep(0.05)
    server.kill()
    sys.exit("the mirror server did not answer within 10 s")


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def closed_by_server(conns: list[socket.socket]) -> int:
    closed = 0
    for conn in conns:
        conn.setblocking(False)
        try:
            closed += conn.recv(1) == b""
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    return closed


def row(root: Path, idle: int, nofile: int | None) -> str:
    port = free_port()
    server = start(root, port, nofile)
    conns: list[socket.socket] = []
    try:
        for _ in range(idle):
            conn = socket.socket()
            conn.settimeout(TIMEOUT)
            try:
                conn.connect(("127.0.0.1", port))
            except OSError:
                conn.close()
                break
            conns.append(conn)
        latencies: list[float] = []
        timeouts = 0
        for _ in range(REQUESTS):
            begin = time.monotonic()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/index.yml", timeout=TIMEOUT).read()
                latencies.append(time.monotonic() - begin)
            except OSError:
                timeouts += 1
                if timeouts == 3:  # starved: the rest would time out too
                    break
        server_threads = threads(server.pid)
        closed = closed_by_server(conns)
    finally:
        for conn in conns:
            conn.close()
        server.terminate()
        server.wait()
    answered = (f"p50 {statistics.median(latencies) * 1000:7.1f} ms  "
                f"max {max(latencies) * 1000:7.1f} ms" if latencies else f"{'-':>30}")
    return (f"{idle:>6} idle  {len(conns):>6} held  {closed:>6} closed by server  "
            f"{server_threads:>5} threads  {answered}  {timeouts}/{REQUESTS} timeout")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, nargs="+", default=[0, 300, 1000, 3000])
    parser.add_argument("--nofile", type=int, default=None,
                        help="The server's open-file limit (soft and hard).")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # room for our own idle sockets
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "index.yml").write_text("checksums: {}\nimages: {}\nsources: {}\n")
        print(f"server open-file limit: {args.nofile or 'inherited'}; {REQUESTS} normal "
              f"GET /index.yml per row, {TIMEOUT:.0f} s timeout")
        for idle in args.idle:
            print(row(root, idle, args.nofile), flush=True)


if __name__ == "__main__":
    main()
