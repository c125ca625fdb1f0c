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


# ----------------------------------------------------------------------------- any stage

_ARGS = ["--metric", "sift", "--metric", "cw-ssim", "--no-progress"]


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, samples_dir):
    """An uninterrupted run: what every interrupted-then-rerun analysis must reproduce."""
    base = tmp_path_factory.mktemp("clean")
    out = base / "out"
    done = subprocess.run(
        [*ATELIER, "analyze", str(samples_dir), "--out", str(out), *_ARGS],
        capture_output=True,
        text=True,
        env=_env(base / "cache"),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return out


def _kill_at(marker: str, sig: int, args: list[str], env: dict[str, str], log) -> tuple[str, int]:
    """Start ``atelier``, send ``sig`` once ``marker`` shows on its progress output.

    Its stderr goes to a file, not a pipe: after a SIGKILL the pool's worker
    processes may hold a pipe open, and reading it to the end would wait for them.
    """
    with open(log, "w") as err:
        # a suite started in the background (``cmd &``) inherits SIGINT ignored, and so would
        # the child: give it the default handling a user's terminal gives it
        proc = subprocess.Popen(
            [*ATELIER, *args],
            stderr=err,
            stdout=subprocess.DEVNULL,
            env=env,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler),
        )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if marker in log.read_text(errors="replace"):
            break
        time.sleep(0.05)
    proc.send_signal(sig)
    code = proc.wait(timeout=60)
    return log.read_text(errors="replace"), code


def _whole_outputs(out) -> None:
    """Every output file present is complete: PNGs decode, JSON parses, CSVs are square."""
    import json

    from PIL import Image

    for png in out.rglob("*.png"):
        with Image.open(png) as im:
            im.load()
    if (out / "run.json").exists():
        json.loads((out / "run.json").read_text())
    for csv in out.glob("similarity_*.csv"):
        rows = csv.read_text().splitlines()
        assert all(len(r.split(",")) == len(rows) for r in rows), csv


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "marker"),
    [
        (signal.SIGINT, "features sift"),
        (signal.SIGKILL, "features cw-ssim"),
        (signal.SIGINT, "similarity cw-ssim"),
        (signal.SIGINT, "writing outputs"),
        (signal.SIGKILL, "writing outputs"),
    ],
    ids=["sigint-features", "sigkill-features", "sigint-pairs", "sigint-report", "sigkill-report"],
)
def test_interrupted_at_any_stage_then_rerun(tmp_path, samples_dir, clean_run, sig, marker):
    cache, out = tmp_path / "cache", tmp_path / "out"
    args = ["analyze", str(samples_dir), "--out", str(out), "--metric", "sift"]
    args += ["--metric", "cw-ssim"]
    seen, code = _kill_at(marker, sig, args, _env(cache), tmp_path / "stderr.txt")
    assert marker in seen, seen[-500:]
    if sig == signal.SIGINT:
        assert code == 130 and "interrupted" in seen and "Traceback" not in seen
        assert not out.exists() or not list(out.rglob("*.part"))  # temporary files removed
    else:
        assert code == -signal.SIGKILL
    if out.exists():
        _whole_outputs(out)
    rerun = subprocess.run(
        [*ATELIER, "analyze", str(samples_dir), "--out", str(out), *_ARGS],
        capture_output=True,
        text=True,
        env=_env(cache),
        timeout=600,
    )
    assert rerun.returncode == 0, rerun.stderr
    import json

    record = json.loads((out / "run.json").read_text())
    for name in ("sift", "cw-ssim"):
        assert record["similarity"][name]["cache"]["corrupt"] == 0
    assert not list(out.rglob("*.part"))  # a killed run's temporary files are cleared
    _whole_outputs(out)
    for name in ("similarity_sift.csv", "similarity_cw-ssim.csv", "clusters.csv"):
        assert (out / name).read_bytes() == (clean_run / name).read_bytes(), name


def test_only_temporary_files_of_dead_writers_are_cleared(tmp_path):
    from app._atomic import clear_stale_parts

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = tmp_path / f".report.html.{gone.pid}.k2j4.part"
    live = tmp_path / f".run.json.{os.getpid()}.x9z1.part"
    other = tmp_path / ".notes.part"  # not ours: no pid field
    for p in (stale, live, other):
        p.write_text("half")
    assert clear_stale_parts(tmp_path) == 1
    assert not stale.exists() and live.exists() and other.exists()
