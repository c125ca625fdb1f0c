"""`atelier analyze`: the output contract, bad input, exit codes."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from factory import bad_files, good_files, write_tree
from PIL import Image

from app.cli import main

ATELIER = [sys.executable, "-m", "app.cli"]


def read_matrix(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header = rows[0][1:]
    ids = [r[0] for r in rows[1:]]
    return header, ids, np.array([[float(v) for v in r[1:]] for r in rows[1:]])


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for key, value in attrs:
            if key in {"src", "href"} and value is not None:
                self.refs.append((tag, key, value))


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory, samples_dir):
    out = tmp_path_factory.mktemp("run") / "out"
    proc = subprocess.run(
        [*ATELIER, "analyze", str(samples_dir), "--out", str(out), "--seed", "3"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_analyze_samples_writes_every_output(sample_run, samples_dir):
    out, proc = sample_run
    names = (
        "clusters.csv",
        "similarity_contour.csv",
        "similarity_sift.csv",
        "similarity_fused.csv",
        "run.json",
        "report.html",
    )
    for name in names:
        assert (out / name).is_file(), name
    assert (out / "figures" / "clusters.png").is_file()
    # each evidence pair also at the originals' resolution, linked from the report
    html = (out / "report.html").read_text()
    for view in ("a", "b_on_a", "overlay"):
        path = out / "figures" / f"pair_within_01_{view}.jpg"
        assert path.is_file() and path.stat().st_size > 1000, view
        assert f'href="figures/pair_within_01_{view}.jpg"' in html, view
    import cv2

    a = cv2.imread(str(out / "figures" / "pair_within_01_a.jpg"))
    b = cv2.imread(str(out / "figures" / "pair_within_01_b_on_a.jpg"))
    assert a.shape == b.shape  # one frame: flip between them (sizes: tests/app/test_fullres.py)
    assert not list(out.rglob("*.part")), "temporary files left behind"
    assert "loading images" in proc.stderr and "100%" in proc.stderr  # progress bars


def test_clusters_csv_one_row_per_image(sample_run, samples_dir):
    out, _ = sample_run
    with open(out / "clusters.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:2] == ["image", "cluster"]
    with open(samples_dir / "families.csv", newline="", encoding="utf-8") as fh:
        truth = [r["image"] for r in csv.DictReader(fh)]
    assert sorted(r[0] for r in rows[1:]) == sorted(truth)
    labels = [int(r[1]) for r in rows[1:]]
    run = json.loads((out / "run.json").read_text())
    assert len(set(labels) - {-1}) == run["clustering"]["k"]
    assert all(lab >= -1 for lab in labels)


@pytest.mark.parametrize("metric", ["contour", "sift", "fused"])
def test_similarity_csv_is_a_valid_matrix(sample_run, metric):
    out, _ = sample_run
    header, ids, values = read_matrix(out / f"similarity_{metric}.csv")
    assert header == ids and len(ids) == 45
    assert values.shape == (45, 45)
    assert np.all(np.diag(values) == 1.0)
    assert np.array_equal(values, values.T)
    assert values.min() >= 0.0 and values.max() <= 1.0
    off = values[np.triu_indices(45, 1)]
    assert off.std() > 0.01  # a real matrix, not a constant
    if metric == "contour":  # SIFT saturates by design; outlines of two files never all meet
        assert off.max() < 1.0


def test_run_json_records_inputs_config_and_versions(sample_run, samples_dir):
    out, _ = sample_run
    run = json.loads((out / "run.json").read_text())
    assert run["software"]["name"] == "atelier" and run["software"]["version"]
    assert re.match(r"\d{4}-\d\d-\d\dT", run["started"])
    assert run["config"]["random_state"] == 3
    assert run["config"]["similarity"]["metrics"] == ["contour", "sift"]
    assert run["config"]["similarity"]["fuse"] == "auto"
    assert run["config"]["clustering"]["method"] == "spectral"
    assert len(run["inputs"]) == 45 and run["skipped"] == []
    for row in run["inputs"]:
        data = (samples_dir / row["image"]).read_bytes()
        assert row["sha256"] == hashlib.sha256(data).hexdigest()
        with Image.open(samples_dir / row["image"]) as im:
            assert (row["width"], row["height"]) == im.size
    c = run["clustering"]
    assert c["metric"] == "fused" and c["method"] == "spectral"
    assert c["consumes"] == "affinity" and c["criterion"] == "silhouette"
    assert len(c["selection"]) > 1 and c["k"] in [row["k"] for row in c["selection"]]
    assert set(run["timings"]) == {
        "load",
        "preprocess",
        "align",  # with align none too: the mean image and the correlations
        "similarity:contour",
        "similarity:sift",
        "clustering",
        "figures",
        "report",
    }
    assert all(v >= 0 for v in run["timings"].values())
    assert run["timings"]["report"] >= run["timings"]["figures"] > 0
    for lib in ("numpy", "scikit-learn", "scikit-image", "opencv-contrib-python-headless"):
        assert run["libraries"][lib] != "not installed"


def test_report_is_self_contained_and_lists_inputs(sample_run):
    out, _ = sample_run
    html = (out / "report.html").read_text(encoding="utf-8")
    parser = _Links()
    parser.feed(html)
    assert parser.refs, "report has no images"
    for tag, key, value in parser.refs:
        if tag == "a" and value.startswith("figures/"):
            # links to the pairs' full-resolution views beside the report (not loaded
            # resources: the report renders whole without them); they must exist there
            assert ".." not in value and (out / value).is_file(), value
            continue
        assert value.startswith(("data:", "#")), f"external reference {tag} {key}={value[:60]}"
    assert "<script" not in html.lower() and "<link" not in html.lower()
    run = json.loads((out / "run.json").read_text())
    for row in run["inputs"]:
        assert row["sha256"] in html
    assert "Skipped files" in html


def test_seed_makes_runs_identical(sample_run, samples_dir, tmp_path):
    out, _ = sample_run
    # no cache: every feature, pair and clustering computed again, not read back
    args = ["analyze", str(samples_dir), "--out", str(tmp_path), "--seed", "3", "--no-cache"]
    assert main([*args, "--no-progress"]) == 0
    assert (tmp_path / "clusters.csv").read_bytes() == (out / "clusters.csv").read_bytes()
    for name in ("contour", "sift", "fused"):
        got = (tmp_path / f"similarity_{name}.csv").read_bytes()
        assert got == (out / f"similarity_{name}.csv").read_bytes()


def test_bad_files_are_skipped_and_originals_untouched(tmp_path, hashes, capsys):
    src = tmp_path / "in"
    write_tree(src, good_files())
    bad = bad_files()
    write_tree(src, {name: data for name, (data, _) in bad.items()})
    (src / "notes.txt").write_text("a note, not an image")
    os.symlink("missing-target.png", src / "dangling.png")
    before = hashes(src)
    mtimes = {p: p.stat().st_mtime_ns for p in src.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    code = main(["analyze", str(src), "--out", str(out), "--no-progress", "--size", "64"])
    assert code == 0
    assert hashes(src) == before
    assert {p: p.stat().st_mtime_ns for p in src.rglob("*") if p.is_file()} == mtimes
    run = json.loads((out / "run.json").read_text())
    skipped = {s["path"]: s["reason"] for s in run["skipped"]}
    assert set(skipped) == set(bad) | {"dangling.png"}
    for name, (_, reason) in bad.items():
        assert re.search(reason, skipped[name]), (name, skipped[name])
    assert "symbolic link" in skipped["dangling.png"]
    assert sorted(r["image"] for r in run["inputs"]) == sorted(good_files())
    html = (out / "report.html").read_text(encoding="utf-8")
    for name in skipped:
        assert name in html
    printed = capsys.readouterr().out
    assert "4 image(s) analysed, 11 skipped" in printed


def test_exit_codes(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "not a folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.jpg").write_bytes(b"")
    assert main(["analyze", str(empty), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "no usable image" in capsys.readouterr().err
    assert main(["analyze", str(empty)]) == 2  # --out missing
    assert "required: --out" in capsys.readouterr().err
    assert main(["analyze", str(empty), "--out", str(tmp_path / "o"), "--cluster", "nope"]) == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err
    # the core names settings; the command line adds the flag that sets each
    out = str(tmp_path / "o")
    assert main(["analyze", str(empty), "--out", out, "--threshold", "0.5"]) == 2
    assert (
        "clustering.threshold (--threshold) cuts a dendrogram: use clustering.method "
        "(--cluster) agglomerative" in capsys.readouterr().err
    )
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[clustering]\nk_mx = 3\n")
    assert main(["analyze", str(empty), "--out", str(tmp_path / "o"), "--config", str(cfg)]) == 2
    assert "clustering.k_mx" in capsys.readouterr().err


def test_the_installed_command_exits_with_mains_code(tmp_path):
    """``atelier`` is :func:`app.cli.run`: main's code is the process's exit code (the
    heap frozen first, so that shutdown skips collecting it; see ``run``)."""
    command = str(Path(sys.executable).parent / "atelier")
    done = subprocess.run([command, "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("atelier ")
    missing = [command, "analyze", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]
    done = subprocess.run(missing, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "not a folder" in done.stderr


def test_the_command_starts_without_scikit_learn():
    """scikit-learn (1.4 s to import, with the SciPy statistics and pandas it brings) is
    imported where something is clustered, evaluated or embedded, not by the command
    itself: --help, --version and a re-run whose clustering is cached do without."""
    code = (
        "import sys, app.cli, app.outputs; "
        "print(sorted(m for m in sys.modules if m.startswith('sklearn')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_run_freezes_the_heap_then_exits_with_mains_code(monkeypatch):
    from app import cli

    calls = []
    monkeypatch.setattr(cli, "main", lambda: calls.append("main") or 3)
    monkeypatch.setattr(cli.gc, "freeze", lambda: calls.append("freeze"))
    with pytest.raises(SystemExit) as exit_:
        cli.run()
    assert exit_.value.code == 3 and calls == ["main", "freeze"]


def test_config_file_and_flags_combine(tmp_path, samples_dir):
    src = tmp_path / "in"
    write_tree(src, good_files())
    cfg = tmp_path / "c.toml"
    cfg.write_text("random_state = 5\n[preprocess]\nwork_size = 96\n[clustering]\nn_clusters = 2\n")
    out = tmp_path / "out"
    assert (
        main(
            [
                "analyze",
                str(src),
                "--out",
                str(out),
                "--config",
                str(cfg),
                "--cluster",
                "agglomerative",
                "--no-progress",
            ]
        )
        == 0
    )
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["preprocess"]["work_size"] == 96
    assert run["config"]["clustering"] == {
        **run["config"]["clustering"],
        "method": "agglomerative",
        "n_clusters": 2,
    }
    assert run["clustering"]["k"] == 2 and run["clustering"]["criterion"] == "fixed"
    assert run["config"]["random_state"] == 5


def test_auto_k_table_for_a_method_that_takes_k(tmp_path, samples_dir):
    out = tmp_path / "o"
    assert (
        main(
            [
                "analyze",
                str(samples_dir),
                "--out",
                str(out),
                "--no-progress",
                "--metric",
                "ssim",
                "--cluster",
                "spectral",
            ]
        )
        == 0
    )
    c = json.loads((out / "run.json").read_text())["clustering"]
    assert c["method"] == "spectral" and c["consumes"] == "affinity"
    assert c["criterion"] == "silhouette" and c["metric"] == "ssim"
    assert [row["k"] for row in c["selection"]] == list(range(2, 26))
    best = max(c["selection"], key=lambda r: r["silhouette"])
    assert c["k"] == best["k_found"]
    with Image.open(out / "figures" / "k_selection.png") as im:
        assert im.size[0] > 600 and im.size[1] > 400
    assert 'alt="choice of k"' in (out / "report.html").read_text(encoding="utf-8")


def test_default_reaches_ari_0_95_on_the_sample_artworks(sample_run, samples_dir):
    """The default chosen on the benchmark (docs/accuracy.md) keeps its accuracy on the samples."""
    from sklearn.metrics import adjusted_rand_score

    out, _ = sample_run
    with open(samples_dir / "families.csv", newline="", encoding="utf-8") as fh:
        truth = {r["image"]: r["family"] for r in csv.DictReader(fh)}
    with open(out / "clusters.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    ids = [r["image"] for r in rows]
    # noise images count as singletons, as in clustering.evaluate_labels
    pred = [int(r["cluster"]) if int(r["cluster"]) >= 0 else -2 - i for i, r in enumerate(rows)]
    ari = adjusted_rand_score([truth[i] for i in ids], pred)
    assert ari >= 0.95, ari  # measured 0.953 (bench/accuracy.py, samples row)


def test_no_cluster_prints_the_cut_the_matrix_supports(tmp_path, samples_dir, capsys):
    cfg = tmp_path / "noise.toml"
    cfg.write_text('[clustering]\nmethod = "hdbscan"\nmin_cluster_size = 60\n')
    out = tmp_path / "o"
    args = ["analyze", str(samples_dir), "--out", str(out), "--config", str(cfg), "--no-progress"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "0 cluster(s) by hdbscan" in text
    hint = re.search(r"supports (\d+) clusters .* --cluster agglomerative --n-clusters (\d+)", text)
    assert hint and hint.group(1) == hint.group(2) and int(hint.group(1)) >= 2


@pytest.mark.parametrize(
    ("given", "expected"), [(["--neighbors", "5"], 5), (["--neighbors", "all"], None), ([], 20)]
)
def test_neighbors_flag_sets_the_spectral_graph(tmp_path, given, expected):
    """``--neighbors K|all`` (and a config file's ``neighbors = "all"``) reach the config."""
    from app.cli import config_from_args
    from app.cli_parser import build_parser

    base = ["analyze", str(tmp_path), "--out", str(tmp_path / "out")]
    args = build_parser().parse_args([*base, *given])
    assert config_from_args(args).clustering.neighbors == expected
    cfg = tmp_path / "c.toml"
    cfg.write_text('[clustering]\nneighbors = "all"\n')
    args = build_parser().parse_args([*base, "--config", str(cfg), *given])
    assert config_from_args(args).clustering.neighbors == (None if not given else expected)


def test_neighbors_flag_refuses_nonsense(tmp_path, capsys):
    assert main(["analyze", str(tmp_path), "--out", str(tmp_path), "--neighbors", "0"]) == 2
    assert "--neighbors: must be at least 1, got 0" in capsys.readouterr().err
