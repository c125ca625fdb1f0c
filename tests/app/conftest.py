"""Fixtures of the app tests: a running web app on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest
from browsing import free_port


@pytest.fixture(scope="module")
def server(samples_dir):
    port = free_port()
    env = {**os.environ, "ATELIER_SAMPLES": str(samples_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "app", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("web app did not start: " + (proc.stdout.read() if proc.stdout else ""))
    yield url, port, proc
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
