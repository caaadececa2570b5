"""Serve the mirror over HTTP to the lab nodes, in the foreground or as a background
process that `hardway up` starts and `hardway nodes down` stops.

The server may face a whole classroom network (`--address 0.0.0.0`), so a client gets
little: one asyncio loop holds every connection (an idle one costs a socket, not a
thread), a client has HEAD_TIMEOUT seconds to send its request, the oldest connections
still sending theirs are closed beyond MAX_WAITING, a download that stalls for
SEND_TIMEOUT is dropped, and only regular files inside the mirror are served.
"""

from __future__ import annotations

import asyncio
import email.utils
import errno
import mimetypes
import os
import resource
import signal
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO

from hardway.children import start
from hardway.mirror.store import Mirror, inside
from hardway.settings import HardwayError, Settings

HEAD_TIMEOUT = 5.0  # seconds from connect to the end of the request headers
SEND_TIMEOUT = 30.0  # seconds a client may take to read each CHUNK of a response
MAX_WAITING = 256  # connections still sending their request; the oldest beyond this are closed
MAX_HEAD = 16 * 1024  # bytes of request line and headers
CHUNK = 1 << 20

REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           431: "Request Header Fields Too Large"}
# Request lines come from the network and go to the instructor's terminal.
UNPRINTABLE = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7f, 0xa0))}


def printable(text: str) -> str:
    return text.translate(UNPRINTABLE)


class MirrorServer:
    def __init__(self, root: Path):
        self.root = root.resolve()
        self.waiting: dict[asyncio.StreamWriter, None] = {}  # insertion order: oldest first

    def open(self, target: str) -> BinaryIO | None:
        """The regular file inside the mirror that a request target names, opened, or None."""
        relpath = urllib.parse.unquote(urllib.parse.urlsplit(target).path).lstrip("/")
        if not inside(relpath):
            return None
        try:  # a name too long for the file system is an OSError too
            path = (self.root / relpath).resolve()  # a symlink must lead inside too
            if not (path.is_relative_to(self.root) and path.is_file()):
                return None
            return path.open("rb")
        except (OSError, ValueError):
            return None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.waiting[writer] = None
        if len(self.waiting) > MAX_WAITING:
            oldest = next(iter(self.waiting))
            del self.waiting[oldest]
            oldest.transport.abort()
        client = (writer.get_extra_info("peername") or ("?",))[0]
        # drain() then waits until the kernel has everything, so abort() below loses nothing.
        writer.transport.set_write_buffer_limits(high=0)
        line, status, size = "", None, 0
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
            except asyncio.LimitOverrunError:
                head = None
            finally:
                self.waiting.pop(writer, None)
            if head is None:
                line, status = "(request headers too long)", await self.send(writer, 431)
            else:
                line = head.split(b"\r\n", 1)[0].decode("latin-1")
                status, size = await self.respond(line, writer)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass  # the client left, stalled or was closed as the oldest idle one
        finally:
            writer.transport.abort()
        if line:
            sys.stderr.write(f'{client} "{printable(line)}" {status or "-"} {size}\n')

    async def respond(self, line: str, writer: asyncio.StreamWriter) -> tuple[int, int]:
        parts = line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return await self.send(writer, 400), 0
        method, target, _ = parts
        if method not in ("GET", "HEAD"):
            return await self.send(writer, 405, {"Allow": "GET, HEAD"}), 0
        body = self.open(target)
        if body is None:
            return await self.send(writer, 404), 0
        with body:
            stat = os.fstat(body.fileno())
            await self.send(writer, 200, {
                "Content-Type": mimetypes.guess_type(target)[0] or "application/octet-stream",
                "Content-Length": str(stat.st_size),
                "Last-Modified": email.utils.formatdate(stat.st_mtime, usegmt=True)})
            if method == "HEAD":
                return 200, 0
            loop = asyncio.get_running_loop()
            sent = 0
            while sent < stat.st_size:
                count = min(CHUNK, stat.st_size - sent)
                chunk = await asyncio.wait_for(
                    loop.sendfile(writer.transport, body, sent, count), SEND_TIMEOUT)
                if chunk == 0:  # the file shrank under us: the client sees a short body
                    break
                sent += chunk
        return 200, sent

    @staticmethod
    async def send(writer: asyncio.StreamWriter, status: int, headers: dict | None = None) -> int:
        headers = {"Content-Length": "0", **(headers or {})}
        writer.write("".join([f"HTTP/1.1 {status} {REASONS[status]}\r\n",
                              *(f"{k}: {v}\r\n" for k, v in headers.items()),
                              "Connection: close\r\n\r\n"]).encode("latin-1"))
        await asyncio.wait_for(writer.drain(), SEND_TIMEOUT)
        return status


def serve_forever(directory: Path, address: str, port: int) -> None:
    mirror = Mirror(directory)
    if not mirror.index_path.exists():
        raise HardwayError(f"{directory} holds no mirror: run `hardway mirror build` first")
    mirror.index()  # refuses a malformed index, saying how to fix it
    # Each connection is a file descriptor: allow as many as the system lets us.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(_serve(MirrorServer(directory), address, port))


async def _serve(mirror: MirrorServer, address: str, port: int) -> None:
    try:
        server = await asyncio.start_server(mirror.handle, address, port, limit=MAX_HEAD,
                                            backlog=1024)
    except OSError as exc:
        # asyncio rewords bind errors at length; the system's words are enough.
        reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or exc
        fixes = {errno.EADDRINUSE: "stop whatever holds it (`hardway nodes down` stops the lab's "
                                   "mirror) or choose another port with --port or HARDWAY_MIRROR_PORT",
                 errno.EACCES: "ports below 1024 need root: choose one from 1024, e.g. 8077"}
        fix = fixes.get(exc.errno or 0,
                        "give --address an address of this machine, e.g. 127.0.0.1 or 0.0.0.0")
        raise HardwayError(f"cannot listen on {address}:{port}: {reason}; {fix}") from None
    host, bound = server.sockets[0].getsockname()[:2]
    sys.stderr.write(f"serving {mirror.root} at http://{host}:{bound}/\n")
    async with server:
        await server.serve_forever()


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
    process = None
    if running(settings) is None:
        settings.state.mkdir(parents=True, exist_ok=True)
        process = start(
            [sys.executable, "-m", "hardway.mirror.serve", str(settings.mirror),
             str(settings.host_address), str(settings.mirror_port)],
            what="starting the mirror server", log=settings.state / "mirror-serve.log",
            session=True)
        pidfile(settings).write_text(f"{process.pid}\n")
    # A Python start takes 0.1 s on a laptop and over 10 s in a VM under software
    # emulation: wait while the server lives, give up at once when it has died. A server
    # just started is asked directly: until it has exec'd, its /proc cmdline is still ours.

    def alive() -> bool:
        return process.poll() is None if process is not None else running(settings) is not None

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and alive():
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
    try:
        serve_forever(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
    except HardwayError as exc:
        sys.exit(f"error: {exc}")
