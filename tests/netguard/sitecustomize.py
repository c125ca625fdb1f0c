"""Loaded into every Python process of a test run whose PYTHONPATH starts here.

Any attempt to reach an address other than loopback (or a Unix socket) fails
with ENETUNREACH and is written to the file named by ATELIER_NET_LOG; each
process also notes its pid in ATELIER_NET_LOG + ".pids", so a test can check
the guard was active in the main process and in its workers.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket

_LOG = os.environ.get("ATELIER_NET_LOG")


def _note(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def _loopback(host: object) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


if _LOG:
    _note(_LOG + ".pids", str(os.getpid()))
    _connect = socket.socket.connect
    _connect_ex = socket.socket.connect_ex
    _sendto = socket.socket.sendto
    _getaddrinfo = socket.getaddrinfo

    def _check(sock: socket.socket, address: object) -> None:
        if sock.family == getattr(socket, "AF_UNIX", None):
            return
        host = address[0] if isinstance(address, tuple) else address
        if not _loopback(host):
            _note(_LOG, f"{os.getpid()} connect {address!r}")
            raise OSError(errno.ENETUNREACH, f"outbound connection blocked: {address!r}")

    def connect(self: socket.socket, address: object) -> None:
        _check(self, address)
        return _connect(self, address)

    def connect_ex(self: socket.socket, address: object) -> int:
        _check(self, address)
        return _connect_ex(self, address)

    def sendto(self: socket.socket, data: bytes, *args: object) -> int:
        _check(self, args[-1])
        return _sendto(self, data, *args)  # type: ignore[arg-type]

    def getaddrinfo(host: object, *args: object, **kwargs: object):  # noqa: ANN202
        if not _loopback(host):
            _note(_LOG, f"{os.getpid()} resolve {host!r}")
            raise socket.gaierror(socket.EAI_NONAME, f"name lookup blocked: {host!r}")
        return _getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = sendto  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
