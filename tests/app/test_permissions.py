"""Files and folders Atelier may not read or write, and a disk that fills up."""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import sys

import pytest
from factory import copy_samples, permissions_bind

ATELIER = [sys.executable, "-m", "app.cli"]


def _env(tmp_path):
    return {
        **os.environ,
        "ATELIER_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _analyze(prefix, folder, out, tmp_path, *extra, **kw):
    """``atelier analyze`` in a child process (under ``prefix``), output captured."""
    return subprocess.run(
        [*prefix, *ATELIER, "analyze", str(folder), "--out", str(out), "--no-progress", *extra],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=600,
        **kw,
    )


def test_unreadable_file_is_skipped_with_its_reason(tmp_path):
    prefix = permissions_bind()
    folder = copy_samples(tmp_path / "images", "photo_cat_*")
    secret = folder / "locked.jpg"
    secret.write_bytes((folder / "photo_cat_1.jpg").read_bytes())
    secret.chmod(0)
    try:
        done = _analyze(prefix, folder, tmp_path / "out", tmp_path, "--workers", "1")
    finally:
        secret.chmod(0o644)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "skipped locked.jpg: cannot read file: permission denied" in done.stdout
    import json

    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert {"path": "locked.jpg", "reason": "cannot read file: permission denied"} in run["skipped"]
    assert len(run["inputs"]) == len(list(folder.iterdir())) - 1


def test_read_only_output_folder_is_refused_before_the_work(tmp_path):
    prefix = permissions_bind()
    folder = copy_samples(tmp_path / "images", "photo_cat_*")
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    before = _digests(folder)
    try:
        done = _analyze(prefix, folder, out, tmp_path)
    finally:
        out.chmod(0o755)
    assert done.returncode == 1
    assert f"atelier: error: cannot write the outputs in {out}: Permission denied" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(out.iterdir()) == []
    assert _digests(folder) == before


def _limit_file_size(limit: int):
    def apply() -> None:
        # a write past the limit fails with EFBIG ("File too large"), as a full disk
        # fails with ENOSPC; the signal that would kill the process is ignored
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
def test_disk_full_while_writing_outputs(tmp_path):
    import matplotlib.font_manager  # noqa: F401 - its cache exists before the limit applies

    folder = copy_samples(tmp_path / "images", "photo_*")
    out = tmp_path / "out"
    done = _analyze([], folder, out, tmp_path, "--no-cache", preexec_fn=_limit_file_size(40_000))
    assert done.returncode == 1, done.stderr
    assert f"atelier: error: cannot write the outputs in {out}: File too large" in done.stderr
    assert "files already written are complete" in done.stderr
    assert "Traceback" not in done.stderr
    assert not list(out.rglob("*.part"))  # no temporary file left
    assert not (out / "run.json").exists()  # the record comes after every other output
    from PIL import Image

    for png in out.rglob("*.png"):  # whatever was written is whole
        with Image.open(png) as im:
            im.load()
