"""Figures, exports and the forensic commands (compare, query) on the sample artworks."""

from __future__ import annotations

import csv
import hashlib
import json
import os

import pytest
from factory import copy_samples
from PIL import Image

from app.cli import main


@pytest.fixture(scope="module")
def analysed(tmp_path_factory, samples_dir):
    out = tmp_path_factory.mktemp("fig") / "out"
    export = out.parent / "export"
    assert (
        main(
            [
                "analyze",
                str(samples_dir),
                "--out",
                str(out),
                "--no-progress",
                "--export-folders",
                str(export),
            ]
        )
        == 0
    )
    return out, export


def test_figures_exist_with_readable_sizes(analysed):
    out, _ = analysed
    figs = out / "figures"
    expected = [
        "clusters.png",
        "dendrogram.png",
        "scatter.png",
        "silhouette.png",
        "heatmap_sift.png",
        "heatmap_contour.png",
        "heatmap_fused.png",
        "pair_within_01.png",
        "pair_across_01.png",
    ]
    for name in expected:
        with Image.open(figs / name) as im:
            assert im.size[0] >= 500 and im.size[1] >= 300, (name, im.size)
    run = json.loads((out / "run.json").read_text())
    assert len(list(figs.glob("cluster_*.png"))) == run["clustering"]["k"]
    html = (out / "report.html").read_text(encoding="utf-8")
    for alt in ("dendrogram", "scatter", "silhouette", "pair_within_01.png", "pair_across_03.png"):
        assert f'alt="{alt}"' in html


def test_export_folders_copy_every_original_once(analysed, samples_dir, hashes):
    out, export = analysed
    with open(out / "clusters.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    copied = sorted(p for p in export.rglob("*") if p.is_file())
    assert len(copied) == len(rows) == 45
    for row in rows:
        folder = "noise" if row["cluster"] == "-1" else f"cluster_{int(row['cluster']):02d}"
        target = export / folder / row["image"]
        assert target.read_bytes() == (samples_dir / row["image"]).read_bytes()
    assert (
        main(
            [
                "analyze",
                str(samples_dir),
                "--out",
                str(out),
                "--no-progress",
                "--export-folders",
                str(export),
            ]
        )
        == 1
    )  # not empty: refused, nothing lost


def test_export_links(tmp_path, samples_dir):
    src = copy_samples(tmp_path / "in", "print_ca*", limit=4)
    export = tmp_path / "links"
    assert (
        main(
            [
                "analyze",
                str(src),
                "--out",
                str(tmp_path / "o"),
                "--no-progress",
                "--export-folders",
                str(export),
                "--link",
            ]
        )
        == 0
    )
    links = [p for p in export.rglob("*") if p.is_symlink()]
    assert len(links) == 4
    for link in links:
        assert os.path.realpath(link).startswith(str(src.resolve()))


def test_query_ranks_the_family_first(tmp_path, samples_dir):
    refs = tmp_path / "refs"
    refs.mkdir()
    for p in (samples_dir / "images").iterdir():
        if p.name != "photo_rocket_2.jpg":
            (refs / p.name).write_bytes(p.read_bytes())
    questioned = tmp_path / "questioned.jpg"
    questioned.write_bytes((samples_dir / "images" / "photo_rocket_2.jpg").read_bytes())
    out = tmp_path / "q"
    assert (
        main(
            [
                "query",
                str(questioned),
                "--against",
                str(refs),
                "--out",
                str(out),
                "--top",
                "6",
                "--no-progress",
            ]
        )
        == 0
    )
    with open(out / "query.csv", newline="") as fh:
        ranking = list(csv.DictReader(fh))
    top3 = {r["reference"] for r in ranking[:3]}
    assert top3 == {"photo_rocket_1.jpg", "photo_rocket_3.jpg", "photo_rocket_4.jpg"}
    assert float(ranking[0]["fused_p_value"]) < 0.1 and float(ranking[5]["fused_p_value"]) > 0.1
    record = json.loads((out / "query.json").read_text())
    assert record["questioned"] == "questioned:questioned.jpg"
    html = (out / "report.html").read_text(encoding="utf-8")
    assert hashlib.sha256(questioned.read_bytes()).hexdigest() in html
    assert (out / "figures" / "evidence_rank_01.png").is_file()
    assert (out / "figures" / "evidence_rank_01_contour.png").is_file()


def test_compare_writes_every_metric_and_both_hashes(tmp_path, samples_dir):
    a = samples_dir / "images" / "print_camera_1.png"
    b = samples_dir / "images" / "print_camera_3.jpg"
    out = tmp_path / "c"
    assert main(["compare", str(a), str(b), "--out", str(out)]) == 0
    record = json.loads((out / "compare.json").read_text())
    assert "fused" not in record["scores"] and len(record["scores"]) == 11
    assert all(0.0 <= v <= 1.0 for v in record["scores"].values())
    assert record["scores"]["sift"] > 0.5 and record["scores"]["contour"] > 0.5
    html = (out / "report.html").read_text(encoding="utf-8")
    for p in (a, b):
        assert hashlib.sha256(p.read_bytes()).hexdigest() in html
    with Image.open(out / "figures" / "pair_evidence.png") as im:
        assert im.size[0] > 800
    with Image.open(out / "figures" / "contour_evidence.png") as im:  # the tracing view
        assert im.size[0] > 800
    # A and B registered onto A at the originals' resolution, linked from the report
    with Image.open(a) as im:
        original = im.size
    for name in ("a.jpg", "b_on_a.jpg", "overlay.jpg"):
        with Image.open(out / "figures" / name) as im:
            assert im.size == original, name
        assert f'href="figures/{name}"' in html
    assert main(["compare", str(a), str(tmp_path / "missing.png"), "--out", str(out)]) == 2


@pytest.mark.slow
def test_pdf_report_renders_to_pages(tmp_path, samples_dir):
    import shutil
    import subprocess

    import numpy as np

    pytest.importorskip("weasyprint")
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed; .ci/run installs it")
    src = copy_samples(tmp_path / "in", "photo_co*")
    out = tmp_path / "o"
    assert main(["analyze", str(src), "--out", str(out), "--no-progress", "--pdf"]) == 0
    pdf = out / "report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    subprocess.run(
        ["pdftoppm", "-r", "30", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=120
    )
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 3
    for page in pages[:3]:
        with Image.open(page) as im:
            assert np.asarray(im.convert("L")).std() > 5  # not blank


@pytest.mark.slow
def test_figures_stay_readable_with_hundreds_of_images(tmp_path):
    from datasets import generated_set

    from app.config import AnalysisConfig
    from app.outputs import build_figures
    from app.pipeline import run_analysis

    images, truth = generated_set(n_bases=12, copies=17, size=96, seed=3)
    assert len(images) == 204
    cfg = AnalysisConfig().replace(
        similarity={"metrics": ["phash", "hog"]},
        preprocess={"work_size": 64},
        report={"evidence_pairs": 1},
    )
    result = run_analysis(images, cfg, labels=truth)
    figures = build_figures(result)
    for name in ("clusters.png", "dendrogram.png", "scatter.png", "heatmap_fused.png"):
        import io

        with Image.open(io.BytesIO(figures[name])) as im:
            assert im.size[0] <= 2000 and im.size[1] <= 4000, (name, im.size)
            assert im.size[0] >= 500
    # above 80 leaves the dendrogram names none, and prints no leaf index in their place
    from app.plots.dendrogram import dendrogram_content

    content = dendrogram_content(result)
    assert content.names is None and len(content.squares) == 204
    assert content.xlabel == "204 images (names omitted above 80)"
