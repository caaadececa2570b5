"""`hardway mirror serve` facing hostile clients: the real server on 127.0.0.1."""

import os
import re
import resource
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from hardway.cli import main
from hardway.mirror.serve import HEAD_TIMEOUT, MAX_WAITING

EMPTY_INDEX = "checksums: {}\nimages: {}\nsources: {}\n"


def wait_for(condition, seconds: float, what: str):
    """condition() -> (done, seen); returns seen once done, or fails with the last seen."""
    deadline = time.monotonic() + seconds
    while True:
        done, seen = condition()
        if done:
            return seen
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {seconds} s; last seen: {seen!r}")
        time.sleep(0.05)


class Served:
    def __init__(self, root: Path, log: Path):
        self.root, self.log = root, log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hardway.mirror.serve", str(root), "127.0.0.1", "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
        ready = re.compile(r"serving .* at (http://127\.0\.0\.1:(\d+))/")
        match = wait_for(lambda: ((m := ready.search(self.text())) is not None, m or self.text()),
                         10, "the server saying where it listens")
        self.url, self.port = match[1], int(match[2])

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def get(self, path: str, method: str = "GET") -> tuple[int, bytes]:
        request = urllib.request.Request(f"{self.url}/{path}", method=method)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, b""

    def threads(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        found = re.search(r"Threads:\s+(\d+)", status)
        assert found, status
        return int(found[1])


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "mirror"
    (root / "images").mkdir(parents=True)
    (root / "index.yml").write_text(EMPTY_INDEX)
    (root / "images" / "pause-amd64.tar").write_bytes(b"pause image")
    server = Served(root, tmp_path / "serve.log")
    yield server
    server.process.terminate()
    server.process.wait(10)


def closed_by_server(conn: socket.socket) -> bool:
    conn.setblocking(False)
    try:
        return conn.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_a_normal_request_is_not_queued_behind_1000_idle_connections(served):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    idle = []
    try:
        for _ in range(1000):
            idle.append(socket.create_connection(("127.0.0.1", served.port), timeout=5))
        # A server that served connections in turn would answer only once the idle ones ahead
        # had timed out (HEAD_TIMEOUT each): half of one is a verdict, not a speed target.
        for _ in range(5):
            begin = time.monotonic()
            assert served.get("index.yml") == (200, EMPTY_INDEX.encode())
            assert time.monotonic() - begin < HEAD_TIMEOUT / 2
        # An idle client costs a socket, not a thread, and beyond the cap not even that.
        assert served.threads() < 50
        wait_for(lambda: ((n := sum(map(closed_by_server, idle))) >= 1000 - MAX_WAITING, n),
                 5, f"the server closing all but {MAX_WAITING} idle connections")
    finally:
        for conn in idle:
            conn.close()


def test_a_client_that_never_finishes_its_request_is_closed_after_the_header_timeout(served):
    begin = time.monotonic()
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as conn:
        conn.sendall(b"GET /index.yml HTTP/1.1\r\n")  # and never the blank line
        wait_for(lambda: (closed_by_server(conn), "open"), HEAD_TIMEOUT + 5,
                 "the server closing a connection that sends no complete request")
    assert time.monotonic() - begin >= HEAD_TIMEOUT - 0.5


@pytest.mark.parametrize(("path", "make"), [
    ("hostname", lambda root: (root / "hostname").symlink_to("/etc/hostname")),
    ("out/hostname", lambda root: (root / "out").symlink_to("/etc")),
    (".hidden", lambda root: (root / ".hidden").write_text("secret")),
    ("images/.index.yml.tmp", lambda root: (root / "images/.index.yml.tmp").write_text("half")),
    ("%2e%2e/%2e%2e/etc/hostname", lambda root: None),
    ("images", lambda root: None),
    ("images/", lambda root: None),
    ("", lambda root: None),
    ("images/" + "x" * 300, lambda root: None),
], ids=["symlink-out", "symlinked-dir-out", "dotfile", "half-written", "dotdot", "dir", "dir-slash",
        "root", "name-too-long"])
def test_only_regular_files_inside_the_mirror_are_served(served, path, make):
    make(served.root)
    assert served.get(path) == (404, b"")


def test_a_file_is_served_whole_and_a_head_request_answers_without_a_body(served):
    assert served.get("images/pause-amd64.tar") == (200, b"pause image")
    big = os.urandom(3 * (1 << 20) + 12345)  # more than one chunk, not a whole number of them
    (served.root / "images" / "big.tar").write_bytes(big)
    assert served.get("images/big.tar") == (200, big)
    assert served.get("images/pause-amd64.tar", "HEAD") == (200, b"")
    assert served.get("index.yml", "DELETE")[0] == 405


def test_request_headers_beyond_16_kib_are_refused(served):
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as conn:
        conn.sendall(b"GET /index.yml HTTP/1.1\r\nX-Pad: " + b"a" * 20000)
        assert conn.recv(100).startswith(b"HTTP/1.1 431")


def test_control_characters_in_a_request_are_logged_escaped(served):
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as conn:
        conn.sendall(b"GET /\x1b[2J\x9b31m HTTP/1.0\r\n\r\n")
        assert conn.recv(100).startswith(b"HTTP/1.1 404")
    line = wait_for(lambda: ("2J" in (text := served.text()), text), 5, "the request logged")
    assert '"GET /\\x1b[2J\\x9b31m HTTP/1.0" 404' in line
    assert "\x1b" not in line and "\x9b" not in line


def test_an_out_of_range_port_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "index.yml").write_text(EMPTY_INDEX)
    result = CliRunner().invoke(main, ["mirror", "serve", "--port", "99999"],
                                env={"HARDWAY_MIRROR": str(tmp_path)})
    assert result.exit_code == 2
    assert result.output == "error: --port 99999 is not a TCP port: use 1-65535, e.g. 8077\n"


def test_a_port_in_use_is_one_line_exit_1_naming_the_fix(tmp_path):
    (tmp_path / "index.yml").write_text(EMPTY_INDEX)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(Path(sys.executable).parent / "hardway"), "mirror", "serve", "--address",
             "127.0.0.1", "--port", str(port)], capture_output=True, text=True, timeout=20,
            env=dict(os.environ, HARDWAY_MIRROR=str(tmp_path), NO_COLOR="1"))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: Address already in use")
    assert "--port" in result.stderr


def test_an_address_not_of_this_machine_is_one_line_exit_1_naming_the_fix(tmp_path):
    (tmp_path / "index.yml").write_text(EMPTY_INDEX)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "hardway"), "mirror", "serve", "--address",
         "192.0.2.9", "--port", "8077"], capture_output=True, text=True, timeout=20,
        env=dict(os.environ, HARDWAY_MIRROR=str(tmp_path), NO_COLOR="1"))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == ("error: cannot listen on 192.0.2.9:8077: Cannot assign requested "
                             "address; give --address an address of this machine, e.g. 127.0.0.1 "
                             "or 0.0.0.0\n")


def test_a_background_server_that_dies_is_reported_at_once_not_waited_for(tmp_path):
    import time as clock

    from hardway.mirror import serve as background
    from hardway.settings import HardwayError, Settings

    # 10.83.0.1 is on no interface here: the server cannot bind and exits.
    settings = Settings.from_env({"HARDWAY_STATE": str(tmp_path / "state"),
                                  "HARDWAY_CACHE": str(tmp_path / "cache"),
                                  "HARDWAY_SUBNET": "10.83.0.0/24", "HARDWAY_MIRROR_PORT": "8083"})
    began = clock.monotonic()
    with pytest.raises(HardwayError, match="did not answer at http://10.83.0.1:8083"):
        background.start_background(settings)
    assert clock.monotonic() - began < 60
