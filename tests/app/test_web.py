"""The web page, through Streamlit's AppTest (what the page shows, not only that it ran)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.cli import main

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "web" / "main.py")


@pytest.fixture
def at(monkeypatch, samples_dir):
    monkeypatch.setenv("ATELIER_SAMPLES", str(samples_dir))
    app = AppTest.from_file(MAIN, default_timeout=300)
    app.run()
    assert not app.exception
    return app


def test_start_page_offers_samples(at):
    assert at.title[0].value == "Atelier"
    assert [b.label for b in at.button] == ["Load sample artworks"]
    assert "Load sample artworks" in at.info[0].value


def test_load_run_and_show_every_image_in_cluster_grids(at, samples_dir, tmp_path):
    at.button[0].click().run()
    assert not at.exception
    assert any("45 image(s) loaded, 0 skipped" in m.value for m in at.markdown)
    run = next(b for b in at.button if b.label == "Run analysis")
    run.click().run()
    assert not at.exception
    captions = [c for img in at.image for c in img.captions]
    with open(samples_dir / "families.csv", newline="", encoding="utf-8") as fh:
        expected = sorted(r["image"] for r in csv.DictReader(fh))
    assert sorted(captions) == expected  # every sample exactly once
    # the page and the CLI agree: same default settings, same number of clusters
    assert main(["analyze", str(samples_dir), "--out", str(tmp_path), "--no-progress"]) == 0
    with open(tmp_path / "clusters.csv", newline="", encoding="utf-8") as fh:
        k_cli = len({r["cluster"] for r in csv.DictReader(fh)} - {"-1"})
    assert at.subheader[0].value == f"{k_cli} clusters"
