"""No outbound traffic: every process of a run is started with connections to anything but
loopback made to fail (tests/netguard/sitecustomize.py), and the test asserts none was tried."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from factory import SAMPLES, copy_samples

GUARD = Path(__file__).resolve().parents[1] / "netguard"
ATELIER = [sys.executable, "-m", "app.cli"]


def _guarded_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    log = tmp_path / "net.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(GUARD), os.environ.get("PYTHONPATH", "")]),
        "ATELIER_NET_LOG": str(log),
        "ATELIER_CACHE_DIR": str(tmp_path / "cache"),
    }
    return env, log


def _attempts(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def _pids(log: Path) -> set[str]:
    pids = Path(str(log) + ".pids")
    return set(pids.read_text().split()) if pids.exists() else set()


def test_the_guard_blocks_and_records(tmp_path):
    env, log = _guarded_env(tmp_path)
    code = (
        "import socket\n"
        "try:\n    socket.create_connection(('192.0.2.1', 80), timeout=1)\n"
        "except OSError as e:\n    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert "blocked" in done.stdout
    assert len(_attempts(log)) == 1


@pytest.mark.slow
def test_cli_pipeline_makes_no_outbound_connection(tmp_path):
    env, log = _guarded_env(tmp_path)
    runs = [
        ["analyze", str(SAMPLES), "--out", str(tmp_path / "out"), "--pdf"],
        ["analyze", str(copy_samples(tmp_path / "few", "photo_*"))]
        + ["--out", str(tmp_path / "dask"), "--scheduler", "local", "--workers", "2"],
        [
            "compare",
            str(SAMPLES / "images" / "photo_cat_1.jpg"),
            str(SAMPLES / "images" / "photo_cat_2.jpg"),
            "--out",
            str(tmp_path / "cmp"),
        ],
    ]
    for args in runs:
        done = subprocess.run(
            [*ATELIER, *args, "--no-progress"] if args[0] == "analyze" else [*ATELIER, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    assert _attempts(log) == []
    # the guard was loaded in the CLI processes and in their worker processes
    assert len(_pids(log)) >= 3 + 2


@pytest.mark.slow
def test_web_server_makes_no_outbound_connection(tmp_path):
    import socket

    env, log = _guarded_env(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [*ATELIER, "app", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
            assert page.status == 200
        time.sleep(3)  # what a server does on its own after start-up
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert _attempts(log) == []
    assert _pids(log)


def test_web_app_pages_make_no_outbound_connection(monkeypatch, samples_dir):
    """The app's pages, run in this process by AppTest through a whole analysis."""
    import socket

    from netguard.sitecustomize import _loopback as loopback
    from streamlit.testing.v1 import AppTest

    tried: list[object] = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self, address):  # noqa: ANN001, ANN202
        if self.family != socket.AF_UNIX and not loopback(address[0]):
            tried.append(address)
            raise OSError("outbound connection blocked")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):  # noqa: ANN001, ANN202
        if not loopback(host):
            tried.append(host)
            raise socket.gaierror("name lookup blocked")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setenv("ATELIER_SAMPLES", str(samples_dir))
    main = str(Path(__file__).resolve().parents[2] / "app" / "web" / "main.py")
    at = AppTest.from_file(main, default_timeout=600)
    at.run()
    next(b for b in at.button if b.label == "Load sample artworks").click().run()
    next(b for b in at.button if b.label == "Run analysis").click().run()
    assert not at.exception
    pages = sorted((Path(main).parent / "views").glob("*.py"))
    for page in pages:
        at.switch_page(f"views/{page.name}").run()
        assert not at.exception, page.name
    assert len(pages) >= 8
    assert tried == []
