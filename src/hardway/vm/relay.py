"""Relay one connection between stdin/stdout and a TCP port on this host.

QEMU's user-mode network runs it for each connection the guest opens to the mirror's
guest-side address (`guestfwd=...-cmd:`): the VM reaches that one host port, nothing else.
Usage: python -m hardway.vm.relay HOST PORT
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    try:
        sock = socket.create_connection((host, port), timeout=10)
    except OSError as exc:
        print(f"relay: cannot reach {host}:{port}: {exc}", file=sys.stderr)
        sys.exit(1)
    sock.settimeout(None)

    def guest_to_host() -> None:
        with contextlib.suppress(OSError):
            while data := os.read(0, 65536):
                sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)

    threading.Thread(target=guest_to_host, daemon=True).start()
    with contextlib.suppress(OSError):
        while data := sock.recv(65536):
            os.write(1, data)


if __name__ == "__main__":
    main()
