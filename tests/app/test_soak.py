"""A server many can share: sessions opened and closed one after another, then several
at once, each loading the samples and running the default analysis; the server's
resident memory (its whole process tree) must come back after the sessions close and
never pass a stated bound.

Counts and bounds (issue 16): 20 sessions in sequence, then 5 at once; memory back to
within 300 MiB of its level after the first session; the peak under 2.5 GiB (the
session cache's bound is set to 1 GiB here, the default is 2 GiB)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from browsing import CHROMIUM, FLAGS, free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SEQUENTIAL = int(os.environ.get("ATELIER_SOAK_SEQUENTIAL", "20"))
CONCURRENT = int(os.environ.get("ATELIER_SOAK_CONCURRENT", "5"))
RETURN_MIB = 300
PEAK_MIB = 2560
ARTIFACTS = Path(
    os.environ.get("ATELIER_TEST_OUTPUT", Path(__file__).resolve().parents[2] / "test-output")
)


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


class _Sampler(threading.Thread):
    """The server tree's resident memory, sampled every 0.2 s: the peak in between."""

    def __init__(self, proc: psutil.Process) -> None:
        super().__init__(daemon=True)
        self.proc, self.peak, self.stop = proc, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, _tree_rss(self.proc))
            time.sleep(0.2)


@pytest.fixture(scope="module")
def soak_server(samples_dir, tmp_path_factory):
    port = free_port()
    env = {
        **os.environ,
        "ATELIER_SAMPLES": str(samples_dir),
        "ATELIER_SESSION_CACHE_MB": "1024",
        # a closed browser's session is released after this many seconds
        "ATELIER_SESSION_GRACE_S": "5",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "app", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
        pytest.fail("web app did not start")
    yield url, psutil.Process(proc.pid)
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _one_session(browser, url: str) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        pg = context.new_page()
        pg.goto(url, wait_until="domcontentloaded")
        pg.get_by_role("button", name="Load sample artworks").click()
        pg.wait_for_function(
            "document.querySelectorAll('[data-testid=\"stImage\"] img').length >= 45",
            timeout=180_000,
        )
        pg.get_by_role("button", name="Run analysis").click()
        pg.locator('[data-testid="stSidebar"]').get_by_text("45 images,", exact=False).wait_for(
            timeout=300_000
        )
        pg.get_by_role("link", name="5. Clusters").click()
        pg.locator("h3", has_text="clusters").wait_for(timeout=120_000)
    finally:
        context.close()


def _settled(proc: psutil.Process, target: int, seconds: float) -> int:
    """The tree's memory once the closed sessions' grace period (5 s) and two passes of
    the server's pruner (every 5 s) are over and it is at or below ``target`` (or after
    ``seconds``)."""
    time.sleep(15)
    deadline = time.monotonic() + seconds
    rss = _tree_rss(proc)
    while rss > target and time.monotonic() < deadline:
        time.sleep(1.0)
        rss = _tree_rss(proc)
    return rss


def test_sessions_release_their_memory(soak_server):
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    playwright = pytest.importorskip("playwright.sync_api")
    url, proc = soak_server
    sampler = _Sampler(proc)
    sampler.start()
    seen = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            _one_session(browser, url)
            after_first = _settled(proc, 0, 0)  # the closed session released
            for _ in range(SEQUENTIAL - 1):
                _one_session(browser, url)
                seen.append(_tree_rss(proc))
            after_sequence = _settled(proc, after_first + RETURN_MIB * 2**20, 60)
            # several at once: each in its own thread needs its own Playwright; the
            # browser's contexts are driven from one thread, in turn, so the server
            # holds all of them open at the same time
            pages = []
            for _ in range(CONCURRENT):
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                pg = context.new_page()
                pg.goto(url, wait_until="domcontentloaded")
                pg.get_by_role("button", name="Load sample artworks").click()
                pages.append((context, pg))
            for _, pg in pages:
                pg.wait_for_function(
                    "document.querySelectorAll('[data-testid=\"stImage\"] img').length >= 45",
                    timeout=180_000,
                )
                pg.get_by_role("button", name="Run analysis").click()
            for i, (_, pg) in enumerate(pages):
                try:
                    pg.locator('[data-testid="stSidebar"]').get_by_text(
                        "45 images,", exact=False
                    ).wait_for(timeout=600_000)
                except Exception:  # what the page said instead, for the CI log's reader
                    ARTIFACTS.mkdir(parents=True, exist_ok=True)
                    pg.screenshot(path=str(ARTIFACTS / f"soak_concurrent_{i}.png"))
                    raise
            with_all_open = _tree_rss(proc)
            for context, _ in pages:
                context.close()
            after_concurrent = _settled(proc, after_first + RETURN_MIB * 2**20, 90)
        finally:
            browser.close()
            sampler.stop.set()
            sampler.join()
    mib = 2**20
    report = (
        f"after the first session {after_first / mib:.0f} MiB; during the sequence "
        f"{[round(s / mib) for s in seen]}; after it {after_sequence / mib:.0f} MiB; "
        f"{CONCURRENT} open at once {with_all_open / mib:.0f} MiB; after they closed "
        f"{after_concurrent / mib:.0f} MiB; peak {sampler.peak / mib:.0f} MiB"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "soak.txt").write_text(report + "\n", encoding="utf-8")
    assert after_sequence <= after_first + RETURN_MIB * mib, report
    assert after_concurrent <= after_first + RETURN_MIB * mib, report
    assert sampler.peak <= PEAK_MIB * mib, report
