"""`atelier app` serves the web app on 127.0.0.1 with statistics off."""

from __future__ import annotations

import socket
import urllib.request


def test_app_serves_on_loopback_only(server):
    url, port, proc = server
    with urllib.request.urlopen(url + "/", timeout=5) as r:
        assert r.status == 200 and b"<html" in r.read().lower()
    # the command line that started Streamlit pins the address and turns statistics off
    cmdline = open(f"/proc/{_streamlit_pid(proc.pid)}/cmdline", "rb").read().split(b"\0")
    assert (
        b"--server.address" in cmdline
        and cmdline[cmdline.index(b"--server.address") + 1] == b"127.0.0.1"
    )
    assert cmdline[cmdline.index(b"--browser.gatherUsageStats") + 1] == b"false"
    assert _listening_addresses(port) == {"127.0.0.1"}


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port`` (read from /proc, no traffic)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, hex_port = local.split(":")
            if state != "0A" or int(hex_port, 16) != port:
                continue
            if width == 8:
                found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr)[::-1]))
            else:
                raw = b"".join(bytes.fromhex(addr[i : i + 8])[::-1] for i in range(0, 32, 8))
                found.add(socket.inet_ntop(socket.AF_INET6, raw))
    return found


def _streamlit_pid(parent: int) -> int:
    children = open(f"/proc/{parent}/task/{parent}/children").read().split()
    return int(children[0]) if children else parent
