"""The web app page by page through Streamlit's AppTest: what each page shows."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.cli import main

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "web" / "main.py")


def shown(markdown: str) -> str:
    """What a caption shows: the app escapes names (Markdown) so they appear as written."""
    import re

    return re.sub(r"\\(.)", r"\1", markdown)


def stored(at, key="result"):
    """What the app keeps for this session (the session store, app/sessions.py)."""
    from app.web.state import STORE

    return STORE.get(at.session_state["atelier_session"], key)


def button(at, label):
    return next(b for b in at.button if b.label == label)


@pytest.fixture(scope="module")
def analysed(samples_dir):
    """The app with the samples loaded and the default analysis run (shared by the tests)."""
    import os

    os.environ["ATELIER_SAMPLES"] = str(samples_dir)
    at = AppTest.from_file(MAIN, default_timeout=600)
    at.run()
    button(at, "Load sample artworks").click().run()
    button(at, "Run analysis").click().run()
    assert not at.exception
    return at


def test_start_page_offers_the_three_sources(samples_dir, monkeypatch):
    monkeypatch.setenv("ATELIER_SAMPLES", str(samples_dir))
    at = AppTest.from_file(MAIN, default_timeout=300)
    at.run()
    assert not at.exception
    assert at.header[0].value == "1. Images"
    labels = [b.label for b in at.button]
    assert {"Load folder", "Load sample artworks", "Run analysis"} <= set(labels)
    assert "Load sample artworks" in at.info[0].value
    assert len(at.get("file_uploader")) == 1


def test_images_page_shows_every_sample_with_its_size(analysed, samples_dir):
    analysed.switch_page("views/images.py").run()
    captions = [shown(c) for img in analysed.image for c in img.captions]
    with open(samples_dir / "families.csv", newline="", encoding="utf-8") as fh:
        ids = sorted(r["image"] for r in csv.DictReader(fh))
    assert sorted(c.split(" (")[0] for c in captions) == ids
    assert any(" (640x480)" in c or "x" in c.split(" (")[1] for c in captions)
    assert any("45 image(s) loaded, 0 skipped" in m.value for m in analysed.markdown)


def test_clusters_page_matches_the_cli(analysed, samples_dir, tmp_path):
    analysed.switch_page("views/clusters.py").run()
    assert not analysed.exception
    captions = [shown(c) for img in analysed.image for c in img.captions if c]
    with open(samples_dir / "families.csv", newline="", encoding="utf-8") as fh:
        expected = sorted(r["image"] for r in csv.DictReader(fh))
    names = [c.removeprefix("exemplar: ") for c in captions]
    assert sorted(names) == expected  # every sample exactly once in the grids
    labels = str(samples_dir / "families.csv")
    args = ["analyze", str(samples_dir), "--out", str(tmp_path), "--no-progress"]
    assert main([*args, "--labels", labels]) == 0
    with open(tmp_path / "clusters.csv", newline="", encoding="utf-8") as fh:
        k_cli = len({r["cluster"] for r in csv.DictReader(fh)} - {"-1"})
    assert analysed.subheader[0].value == f"{k_cli} clusters"
    # the folder's families.csv is read: the page scores the result as the CLI (and the
    # accuracy benchmark) does
    import json

    ari = json.loads((tmp_path / "run.json").read_text())["evaluation"]["adjusted_rand"]
    assert analysed.metric[0].value == f"{ari:.3f}"
    assert [t.label for t in analysed.tabs] == [
        "Grids",
        "Dendrogram",
        "Scatter",
        "Choice of k",
        "Silhouette",
    ]


def test_changing_a_clustering_parameter_reclusters_fast(analysed):
    import time

    analysed.switch_page("views/clusters.py").run()
    analysed.selectbox[0].select("agglomerative").run()
    t0 = time.perf_counter()
    button(analysed, "Run analysis").click().run()
    seconds = time.perf_counter() - t0
    assert not analysed.exception
    assert any("agglomerative on the fused similarity" in c.value for c in analysed.caption)
    assert seconds < 5.0, seconds  # features and matrices are reused (measured well under 1 s)
    analysed.selectbox[0].select("hdbscan").run()
    button(analysed, "Run analysis").click().run()


def test_similarity_page_shows_heatmaps_and_evidence(analysed):
    analysed.switch_page("views/similarity.py").run()
    assert not analysed.exception
    assert analysed.selectbox[0].options == ["contour", "sift", "fused"]
    button(analysed, "Show evidence").click().run()
    assert not analysed.exception


def test_equalize_and_align_pages_offer_their_settings(analysed):
    analysed.switch_page("views/equalize.py").run()
    assert [c.label for c in analysed.checkbox] == ["Brightness", "Contrast", "Sharpness"]
    assert "Run analysis" in analysed.info[0].value
    analysed.switch_page("views/align.py").run()
    assert analysed.selectbox[0].options[:3] == ["none", "translation", "rigid"]


def test_compare_page_lists_every_metric(analysed):
    analysed.switch_page("views/compare.py").run()
    assert not analysed.exception
    frame = analysed.dataframe[0].value
    from app.forensic import FORENSIC_METRICS

    res = stored(analysed)
    # the analysis' matrices first, each value the matrix entry of the pair shown
    assert list(frame["matrix"]) == list(res.matrices)
    for name, value in zip(frame["matrix"], frame["similarity"], strict=True):
        assert abs(value - res.matrices[name].values[0, 1]) <= 1e-9
    # one headline: the score the clusters came from, and where it stands in the collection
    from app.evidence import closer_than

    fused = res.matrices["fused"].values
    headline = analysed.metric[0]
    assert headline.label == "Probability that A and B share a template"
    assert headline.value == f"{fused[0, 1]:.3f}"
    rank = closer_than(fused, 0, 1)
    assert any(f"closer than {rank:.0f} % of the other pairs" in c.value for c in analysed.caption)
    # the other metrics, computed for this pair only, in their own table
    others = analysed.dataframe[1].value
    assert list(others["metric"]) == [m for m in FORENSIC_METRICS if m not in res.matrices]
    assert others["similarity"].between(0, 1).all()


def test_export_page_offers_the_downloads(analysed):
    analysed.switch_page("views/export.py").run()
    button(analysed, "Prepare the downloads").click().run()
    assert not analysed.exception
    labels = [b.label for b in analysed.get("download_button")]
    for name in ("report.html", "run.json", "clusters.zip", "similarity_fused.csv"):
        assert f"Download {name}" in labels, labels


def test_upload_limits_give_clear_messages():
    from app.web.pages_data import check_uploads
    from app.web.state import LIMITS

    big = int(LIMITS["max_file_mb"] * 2**20) + 1
    problems = check_uploads([("a.png", 10), ("huge.tif", big)])
    assert len(problems) == 1 and problems[0].startswith("huge.tif:")
    many = check_uploads([(f"{i}.png", 1) for i in range(LIMITS["max_files"] + 1)])
    assert "at most" in many[0]


def test_cluster_zip_holds_relative_paths_only(analysed):
    import io
    import zipfile

    from app.web.pages_forensic import cluster_zip

    res = stored(analysed)
    with zipfile.ZipFile(io.BytesIO(cluster_zip(res))) as zf:
        names = zf.namelist()
    assert len(names) == 45
    assert all(not n.startswith("/") and ".." not in n.split("/") for n in names)


def test_reclustering_reuses_the_matrices_in_under_a_second(analysed):
    import time

    from app.config import AnalysisConfig
    from app.pipeline import recluster

    res = stored(analysed)
    cfg = res.config.replace(clustering={"method": "agglomerative", "linkage": "complete"})
    t0 = time.perf_counter()
    again = recluster(res, cfg)
    assert time.perf_counter() - t0 < 1.0
    assert again.matrices is res.matrices and again.clustering.method == "agglomerative"
    import pytest as _pytest

    from preprocessing import ConfigError

    with _pytest.raises(ConfigError, match="recluster can only change clustering"):
        recluster(res, AnalysisConfig().replace(preprocess={"work_size": 128}))


def test_the_app_offers_exactly_the_registries(samples_dir, monkeypatch):
    """Methods, criteria, linkages, metrics and motion models come from the core's lists."""
    from clustering import METHODS
    from clustering.methods import MATRIX_LINKAGES
    from preprocessing.align import ALIGN_METHODS
    from similarity import READY_METRICS

    monkeypatch.setenv("ATELIER_SAMPLES", str(samples_dir))
    at = AppTest.from_file(MAIN, default_timeout=300)
    at.run()
    at.switch_page("views/clusters.py").run()
    method_box = next(s for s in at.selectbox if s.label == "Method")
    assert list(method_box.options) == list(METHODS)
    for name, method in METHODS.items():
        next(s for s in at.selectbox if s.label == "Method").select(name).run()
        assert not at.exception
        boxes = {s.label: list(s.options) for s in at.selectbox}
        assert boxes.get("Criterion", []) == list(method.criteria), name
        linkages = [x for x in method.linkages if x in MATRIX_LINKAGES]
        assert boxes.get("Linkage", []) == linkages, name
        assert method.summary in [c.value for c in at.caption]
        assert ("k" in [n.label for n in at.number_input]) is False or not method.chooses_k
        toggles = [t.label for t in at.toggle]
        assert ("Choose k automatically" in toggles) == (not method.chooses_k), name
        numbers = {n.label: n.value for n in at.number_input}
        assert ("Neighbours per image" in numbers) == method.graph_neighbors, name
        if method.graph_neighbors:
            assert numbers["Neighbours per image"] == 20  # the default
    # a threshold cut decides the number of clusters: the k controls are not shown with it
    next(s for s in at.selectbox if s.label == "Method").select("agglomerative").run()
    next(
        c for c in at.checkbox if c.label.startswith("Cut at a similarity threshold")
    ).check().run()
    assert "Choose k automatically" not in [t.label for t in at.toggle]
    assert "k" not in [n.label for n in at.number_input]
    assert "Similarity threshold" in [sl.label for sl in at.slider]
    at.switch_page("views/similarity.py").run()
    assert list(at.multiselect[0].options) == list(READY_METRICS)
    at.switch_page("views/align.py").run()
    model_box = next(s for s in at.selectbox if s.label == "Motion model")
    assert list(model_box.options) == list(ALIGN_METHODS)


def test_no_cluster_is_said_and_the_dendrogram_cut_offered(samples_dir, monkeypatch):
    """HDBSCAN calling every image noise: the page says so and one click applies the cut
    of the same matrix's dendrogram (the CLI prints the same hint)."""
    monkeypatch.setenv("ATELIER_SAMPLES", str(samples_dir))
    at = AppTest.from_file(MAIN, default_timeout=600)
    at.run()
    button(at, "Load sample artworks").click().run()
    at.session_state["settings"] = {"clustering": {"method": "hdbscan", "min_cluster_size": 60}}
    button(at, "Run analysis").click().run()
    assert stored(at).clustering.k == 0
    at.switch_page("views/clusters.py").run()
    assert not at.exception
    assert at.subheader[0].value == "0 clusters"
    assert any("No cluster: hdbscan called every image noise" in w.value for w in at.warning)
    offer = next(b for b in at.button if b.label.startswith("Use the dendrogram cut"))
    offer.click().run()
    assert not at.exception
    res = stored(at)
    assert res.clustering.method == "agglomerative" and res.clustering.k >= 2
    assert at.subheader[0].value == f"{res.clustering.k} clusters"
    assert "✔ Clusters" in at.sidebar.markdown[0].value


def test_a_result_made_with_other_settings_is_marked_out_of_date(analysed):
    analysed.switch_page("views/clusters.py").run()
    next(s for s in analysed.selectbox if s.label == "Method").select("kmeans").run()
    notes = [w.value for w in analysed.sidebar.warning]
    assert any(n.startswith("Out of date: the clustering settings") for n in notes), notes
    button(analysed, "Run analysis").click().run()
    assert stored(analysed).clustering.method == "kmeans"
    assert not [w.value for w in analysed.sidebar.warning if "Out of date" in w.value]


def test_real_paintings_are_one_click_away(samples_dir, monkeypatch, tmp_path):
    """The button fetches the Raphael copies (here a stand-in folder: tests never use the
    network) and loads them; offline, it says so plainly."""
    import shutil

    import app.paintings
    from app.paintings import PaintingsUnavailable

    stand_in = tmp_path / "paintings"
    stand_in.mkdir()
    for src in sorted((samples_dir / "images").glob("cartoon_a_*"))[:4]:
        shutil.copy(src, stand_in / src.name)
    monkeypatch.setattr(app.paintings, "fetch_paintings", lambda *a, **k: stand_in)
    monkeypatch.setenv("ATELIER_SAMPLES", str(samples_dir))
    at = AppTest.from_file(MAIN, default_timeout=300)
    at.run()
    button(at, "Load real paintings: 11 copies of a Raphael").click().run()
    assert not at.exception and not at.error
    assert any("4 image(s) loaded, 0 skipped" in m.value for m in at.markdown)

    def offline(*args, **kwargs):
        raise PaintingsUnavailable("could not download unraphael==0.2.1 (offline?)")

    monkeypatch.setattr(app.paintings, "fetch_paintings", offline)
    button(at, "Load real paintings: 11 copies of a Raphael").click().run()
    assert any("The real paintings cannot be had" in e.value for e in at.error)
    assert any("offline" in e.value for e in at.error)


def test_an_address_that_cannot_be_restored_is_said(samples_dir, monkeypatch, tmp_path):
    """Settings that do not validate and a folder that is gone: the defaults apply, the
    sidebar says what was not restored and why; good settings come back."""
    monkeypatch.setenv("ATELIER_SAMPLES", str(samples_dir))
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.query_params["settings"] = '{"clustering": {"method": "magic"}}'
    at.query_params["folder"] = str(tmp_path / "gone")
    at.run()
    assert not at.exception
    said = " ".join(w.value for w in at.sidebar.warning)
    assert "Not restored from the address" in said and "magic" in said, said
    assert "no such folder" in said, said
    assert at.session_state["settings"] == {}
    good = AppTest.from_file(MAIN, default_timeout=120)
    good.query_params["settings"] = '{"clustering": {"method": "agglomerative"}}'
    good.run()
    assert good.session_state["settings"] == {"clustering": {"method": "agglomerative"}}
    assert "the settings" in " ".join(i.value for i in good.sidebar.info)


def test_a_released_session_is_told_so(samples_dir):
    """When the server released this session's images (memory bound, idle timeout) the
    page says why and how to get them back, instead of silently showing an empty app."""
    import os

    from app.web.state import STORE

    os.environ["ATELIER_SAMPLES"] = str(samples_dir)
    at = AppTest.from_file(MAIN, default_timeout=600)
    at.run()
    button(at, "Load sample artworks").click().run()
    assert len(stored(at, "images")) == 45
    STORE.drop_session(at.session_state["atelier_session"], "no use for 30 minutes")
    at.run()
    said = " ".join(w.value for w in at.warning)
    assert "released to free the server's memory (no use for 30 minutes)" in said
    assert "Reload the page" in said
    at.run()  # said once
    assert not any("released" in w.value for w in at.warning)
