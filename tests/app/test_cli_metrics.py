"""`atelier analyze` with several metrics, fusion, the cache and an ONNX model."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from factory import build_tiny_onnx, copy_samples

from app.cli import main

METRICS = ["sift", "ssim", "cw-ssim", "mse", "brushstroke"]


@pytest.fixture(scope="module")
def multi_run(tmp_path_factory, samples_dir):
    out = tmp_path_factory.mktemp("multi")
    cache = tmp_path_factory.mktemp("cache")
    args = ["analyze", str(samples_dir), "--no-progress", "--cache-dir", str(cache)]
    for m in METRICS:
        args += ["--metric", m]
    args += ["--fuse", "1,1,2,1,1"]
    assert main([*args, "--out", str(out / "first")]) == 0
    assert main([*args, "--out", str(out / "second")]) == 0
    return out


def matrix(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0][1:], np.array([[float(v) for v in r[1:]] for r in rows[1:]])


def test_one_matrix_per_metric_and_the_fused_one(multi_run):
    out = multi_run / "first"
    for name in [*METRICS, "fused"]:
        ids, values = matrix(out / f"similarity_{name}.csv")
        assert values.shape == (45, 45) and np.all(np.diag(values) == 1.0)
        assert np.array_equal(values, values.T) and values.min() >= 0 and values.max() <= 1
        assert (out / "figures" / f"heatmap_{name}.png").is_file()
    run = json.loads((out / "run.json").read_text())
    assert run["clustering"]["metric"] == "fused"
    assert run["similarity"]["fused"]["params"]["weights"] == pytest.approx(
        [1 / 6, 1 / 6, 2 / 6, 1 / 6, 1 / 6]
    )
    for name in METRICS:
        assert f"similarity:{name}" in run["timings"]
    html = (out / "report.html").read_text(encoding="utf-8")
    for name in [*METRICS, "fused"]:
        assert f'alt="{name} similarity heatmap"' in html


def test_second_run_is_served_from_the_cache(multi_run):
    first = json.loads((multi_run / "first" / "run.json").read_text())["similarity"]
    second = json.loads((multi_run / "second" / "run.json").read_text())["similarity"]
    for name in METRICS:
        assert first[name]["cache"]["features_computed"] == 45
        assert first[name]["cache"]["pairs_computed"] == 990
        counts = {k: v for k, v in second[name]["cache"].items() if not k.startswith("seconds")}
        assert counts == {
            "features_cached": 0,
            "features_computed": 0,
            "pairs_cached": 990,
            "pairs_computed": 0,
            "corrupt": 0,
            "run_store_gb": 0.0,
        }
        a = matrix(multi_run / "first" / f"similarity_{name}.csv")[1]
        b = matrix(multi_run / "second" / f"similarity_{name}.csv")[1]
        assert np.array_equal(a, b)


def test_no_cache_writes_nothing(tmp_path, samples_dir):
    cache = tmp_path / "cache"
    src = copy_samples(tmp_path / "in", "print_cat_*", limit=3)
    assert (
        main(
            [
                "analyze",
                str(src),
                "--out",
                str(tmp_path / "o"),
                "--no-progress",
                "--no-cache",
                "--cache-dir",
                str(cache),
            ]
        )
        == 0
    )
    assert not cache.exists() or not any(cache.iterdir())
    run = json.loads((tmp_path / "o" / "run.json").read_text())
    assert run["cache"]["enabled"] is False


def test_embedding_with_a_local_model(tmp_path, samples_dir):
    pytest.importorskip("onnxruntime")
    model = build_tiny_onnx(tmp_path / "m.onnx")
    src = copy_samples(tmp_path / "in", "photo_c*_1.jpg")
    out = tmp_path / "o"
    assert (
        main(
            [
                "analyze",
                str(src),
                "--out",
                str(out),
                "--no-progress",
                "--metric",
                "embedding",
                "--model",
                str(model),
            ]
        )
        == 0
    )
    run = json.loads((out / "run.json").read_text())
    params = run["similarity"]["embedding"]["params"]
    assert params["model"] == str(model.resolve()) and len(params["model_sha256"]) == 64


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--metric", "embedding"],
            "needs a model: set similarity.metric_params.embedding.model (--model)",
        ),
        (["--metric", "sift", "--metric", "ssim", "--fuse", "1"], "needs 2 non-negative weights"),
        (["--metric", "nope"], "invalid choice: 'nope'"),
    ],
)
def test_bad_metric_options(tmp_path, samples_dir, capsys, args, message):
    assert main(["analyze", str(samples_dir), "--out", str(tmp_path / "o"), *args]) == 2
    assert message in capsys.readouterr().err
