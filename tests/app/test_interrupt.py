"""Runs killed mid-way and runs side by side: nothing half-written, nothing corrupt."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

ATELIER = [sys.executable, "-m", "app.cli"]


def _env(cache):
    return {**os.environ, "ATELIER_CACHE_DIR": str(cache)}


@pytest.mark.slow
def test_sigkill_during_pairs_then_rerun(tmp_path, samples_dir):
    cache, out = tmp_path / "cache", tmp_path / "out"
    proc = subprocess.Popen(
        [
            *ATELIER,
            "analyze",
            str(samples_dir),
            "--out",
            str(out),
            "--metric",
            "ssim",
            "--metric",
            "cw-ssim",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=_env(cache),
        text=True,
    )
    seen = ""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        chunk = proc.stderr.read(64) if proc.stderr else ""
        seen += chunk
        if "similarity cw-ssim" in seen or not chunk:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert "similarity" in seen  # killed while comparing pairs
    assert not out.exists() or not list(out.rglob("*.part"))
    assert not (out / "run.json").exists()  # outputs come last, whole or not at all
    rerun = subprocess.run(
        [
            *ATELIER,
            "analyze",
            str(samples_dir),
            "--out",
            str(out),
            "--metric",
            "ssim",
            "--metric",
            "cw-ssim",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        env=_env(cache),
        timeout=600,
    )
    assert rerun.returncode == 0, rerun.stderr
    import json

    stats = json.loads((out / "run.json").read_text())["similarity"]["ssim"]["cache"]
    assert stats["pairs_cached"] == 990 and stats["corrupt"] == 0  # the finished metric reused


@pytest.mark.slow
def test_two_runs_at_once_share_one_cache(tmp_path, samples_dir):
    cache = tmp_path / "cache"
    args = ["analyze", str(samples_dir), "--no-progress", "--metric", "sift", "--metric", "ssim"]
    procs = [
        subprocess.Popen(
            [*ATELIER, *args, "--out", str(tmp_path / f"o{i}")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=_env(cache),
        )
        for i in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    for name in ("similarity_sift.csv", "similarity_ssim.csv", "clusters.csv"):
        assert (tmp_path / "o0" / name).read_bytes() == (tmp_path / "o1" / name).read_bytes()
