"""`atelier analyze --equalize/--align/--reference`: run.json, figures and report."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from app.cli import main


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    """Two families: shifted copies with different exposure and focus."""
    root = tmp_path_factory.mktemp("copies")
    rng = np.random.default_rng(0)
    bases = {"cam": data.camera(), "coins": data.coins()}
    for name, base in bases.items():
        base = cv2.resize(base, (200, 160), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        for i in range(3):
            m = np.float32([[1, 0, rng.uniform(-6, 6)], [0, 1, rng.uniform(-6, 6)]])
            img = cv2.warpAffine(base, m, (200, 160), borderMode=cv2.BORDER_REFLECT)
            img = np.clip(img * rng.uniform(0.7, 1.2) + rng.uniform(-0.1, 0.1), 0, 1)
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.5))
            Image.fromarray((img * 255).astype(np.uint8)).save(root / f"{name}_{i}.png")
    return root


def run(copies, out, *extra):
    return main(
        [
            "analyze",
            str(copies),
            "--out",
            str(out),
            "--no-progress",
            "--size",
            "128",
            "--cluster",
            "agglomerative",
            "--n-clusters",
            "2",
            *extra,
        ]
    )


def test_equalize_and_align_are_recorded_and_drawn(copies, tmp_path):
    out = tmp_path / "o"
    assert (
        run(
            copies,
            out,
            "--equalize",
            "brightness,contrast,sharpness",
            "--align",
            "translation",
            "--reference",
            "mean",
        )
        == 0
    )
    rec = json.loads((out / "run.json").read_text())
    eq = rec["equalization"]
    assert eq["measures"] == ["brightness", "contrast", "sharpness"]
    for m in eq["measures"]:
        assert eq["summary"][m]["std_after"] <= 0.2 * eq["summary"][m]["std_before"]
    assert len(eq["images"]) == 6 and {"brightness_before", "sharpness_after"} <= set(
        eq["images"][0]
    )
    al = rec["alignment"]
    assert al["method"] == "translation" and al["reference"] == "mean" and al["rounds"] >= 1
    assert len(al["images"]) == 6
    assert all(np.array(row["transform"]).shape == (3, 3) for row in al["images"])
    assert rec["config"]["preprocess"]["align"] == "translation"
    assert {"equalize", "align"} <= set(rec["timings"])
    for fig in ("alignment.png", "equalization.png"):
        with Image.open(out / "figures" / fig) as im:
            assert im.size[0] > 400 and im.size[1] > 300
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "mean image before alignment" not in html  # the figure is an image, its caption says:
    assert "the mean of all work images before and after alignment" in html
    assert "Set std after" in html and "NCC after" in html
    with open(out / "clusters.csv") as fh:
        labels = {line.split(",")[0]: line.split(",")[1] for line in fh.read().splitlines()[1:]}
    assert (
        labels["cam_0.png"] == labels["cam_1.png"] == labels["cam_2.png"] != labels["coins_0.png"]
    )


def test_feature_path_and_image_reference(copies, tmp_path):
    out = tmp_path / "o"
    assert (
        run(
            copies,
            out,
            "--align",
            "features",
            "--reference",
            "cam_1.png",
            "--feature-model",
            "similarity",
        )
        == 0
    )
    al = json.loads((out / "run.json").read_text())["alignment"]
    assert al["reference"] == "cam_1.png"
    rows = {r["image"]: r for r in al["images"]}
    assert rows["cam_1.png"]["inliers"] is None
    assert rows["cam_0.png"]["inliers"] >= 20 and rows["cam_0.png"]["aligned"]
    assert not rows["coins_0.png"]["aligned"]  # another work: no match, left unaligned, said so
    assert any("coins_0.png: too few feature matches" in w for w in al["warnings"])


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--align", "bilinear", "--reference", "previous"],
            "bilinear model cannot align to the previous",
        ),
        (["--align", "warp"], "invalid choice: 'warp'"),
        (["--equalize", "hue"], "unknown measure(s) 'hue'"),
        (["--align", "translation", "--reference", "nope.png"], "reference 'nope.png' is neither"),
    ],
)
def test_impossible_options_are_refused_with_a_message(copies, tmp_path, capsys, args, message):
    code = run(copies, tmp_path / "o", *args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err
