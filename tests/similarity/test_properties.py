"""What each metric exists for, measured: CW-SSIM's tolerance, brushstroke's texture, SIFT's
geometry, fusion's calibration, the embedding model."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from preprocessing import ConfigError, MatrixError, WorkImage
from similarity import METRICS, SimilarityMatrix, get_metric, pairwise
from similarity.fusion import calibrate, fuse

SIZE = 128


def gray(img):
    return cv2.resize(img.astype(np.float32) / 255, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def feats(name, img, mask=None, **params):
    m = get_metric(name, **params)
    return m, m.extract(img, np.ones(img.shape, bool) if mask is None else mask)


@pytest.mark.parametrize(
    "kind,amount", [("shift", 1), ("shift", 2), ("shift", 3), ("rotate", 1.0), ("rotate", 2.0)]
)
@pytest.mark.parametrize("source", ["camera", "coins", "astronaut"])
def test_cw_ssim_stays_higher_than_ssim_under_small_shift_and_rotation(kind, amount, source):
    img = getattr(data, source)()
    base = gray(img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))
    if kind == "shift":
        m = np.float32([[1, 0, amount], [0, 1, amount]])
    else:
        m = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), amount, 1.0)
    moved = cv2.warpAffine(base, m, (SIZE, SIZE), borderMode=cv2.BORDER_REFLECT)
    scores = {}
    for name in ("ssim", "cw-ssim"):
        metric, fa = feats(name, base)
        scores[name] = metric.compare(fa, metric.extract(moved, np.ones(moved.shape, bool)))
    # measured margin with the default scales (1-3 of 4): at least 0.075 on these images
    assert scores["cw-ssim"] > scores["ssim"] + 0.05, scores


def brush_painting(direction_deg, length, seed):
    """The same contours (a cartoon), painted with a given brush direction and stroke length."""
    rng = np.random.default_rng(seed)
    img = np.full((SIZE, SIZE), 0.6, np.float32)
    noise = rng.standard_normal((SIZE, SIZE)).astype(np.float32)
    k = np.zeros((length, length), np.float32)
    k[length // 2, :] = 1.0 / length
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), direction_deg, 1.0)
    k = cv2.warpAffine(k, rot, (length, length))
    strokes = cv2.filter2D(noise, -1, k / k.sum())
    img += 0.25 * strokes / strokes.std()
    for centre, radius in (((40, 40), 22), ((85, 80), 30), ((30, 95), 15)):
        cv2.circle(img, centre, radius, 0.1, 2, cv2.LINE_AA)
    return np.clip(img, 0, 1)


def test_brushstroke_separates_two_hands_with_the_same_contours():
    m = METRICS["brushstroke"]
    full = np.ones((SIZE, SIZE), bool)
    hand_a = [m.extract(brush_painting(30, 15, s), full) for s in (1, 2, 3)]
    hand_b = [m.extract(brush_painting(120, 5, s), full) for s in (4, 5, 6)]
    within = [
        m.compare(x, y)
        for group in (hand_a, hand_b)
        for i, x in enumerate(group)
        for y in group[i + 1 :]
    ]
    between = [m.compare(x, y) for x in hand_a for y in hand_b]
    assert min(within) > max(between) + 0.1, (within, between)
    # SSIM, blind to handling, cannot tell them apart as well
    s = METRICS["ssim"]
    sa = [s.extract(brush_painting(30, 15, k), full) for k in (1, 2)]
    sb = s.extract(brush_painting(120, 5, 4), full)
    assert abs(s.compare(sa[0], sa[1]) - s.compare(sa[0], sb)) < 0.1


def test_sift_blank_images_give_defined_similarity():
    m = METRICS["sift"]
    blank = np.full((SIZE, SIZE), 0.5, np.float32)
    full = np.ones((SIZE, SIZE), bool)
    fb = m.extract(blank, full)
    fc = m.extract(gray(data.camera()), full)
    assert len(fb.points) == 0
    assert m.compare(fb, fb) == 1.0 and m.compare(fb, fc) == 0.0 and m.compare(fc, fb) == 0.0
    ims = [
        WorkImage("blank", blank, full, np.eye(3)),
        WorkImage("cam", gray(data.camera()), full, np.eye(3)),
    ]
    mat = pairwise(ims, m, n_jobs=1)
    np.testing.assert_array_equal(mat.values, np.eye(2))


def test_sift_matches_through_rotation_and_scale_that_ssim_cannot():
    base = gray(data.camera())
    m = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), 25, 0.85)
    moved = cv2.warpAffine(base, m, (SIZE, SIZE), borderMode=cv2.BORDER_REFLECT)
    other = gray(data.coins())
    sift, fa = feats("sift", base)
    s_copy = sift.compare(fa, sift.extract(moved, np.ones_like(moved, bool)))
    s_other = sift.compare(fa, sift.extract(other, np.ones_like(other, bool)))
    assert s_copy > 0.5 and s_other < 0.1
    match = sift.match(fa, sift.extract(moved, np.ones_like(moved, bool)))
    assert match.transform is not None
    angle = np.degrees(np.arctan2(match.transform[1, 0], match.transform[0, 0]))
    assert abs(abs(angle) - 25) < 1.0


def _matrix(values, name):
    return SimilarityMatrix(("a", "b", "c"), np.array(values, float), name)


def test_fusion_calibrates_and_weights():
    wide = _matrix([[1, 0.9, 0.1], [0.9, 1, 0.2], [0.1, 0.2, 1]], "wide")
    narrow = _matrix([[1, 0.51, 0.52], [0.51, 1, 0.50], [0.52, 0.50, 1]], "narrow")
    np.testing.assert_allclose(calibrate(wide, "rank")[0], [1, 1.0, 0.0])
    np.testing.assert_allclose(calibrate(narrow, "minmax")[0, 1:], [0.5, 1.0])
    fused = fuse([wide, narrow], [3, 1])
    assert fused.metric == "fused" and fused.params["weights"] == [0.75, 0.25]
    np.testing.assert_allclose(fused.values[0, 1], 0.75 * 1.0 + 0.25 * 0.5)
    only = fuse([wide, narrow], [1, 0], calibration="minmax")
    np.testing.assert_allclose(only.values, calibrate(wide, "minmax"))
    with pytest.raises(ConfigError, match="2 non-negative numbers"):
        fuse([wide, narrow], [1, -1])
    with pytest.raises(MatrixError, match="different ids"):
        fuse([wide, SimilarityMatrix(("x", "y", "z"), np.eye(3), "o")])


def test_embedding_needs_a_model_and_runs_one(tiny_onnx):
    with pytest.raises(ConfigError, match="needs a model: set similarity.metric_params"):
        METRICS["embedding"].check_ready()
    with pytest.raises(ConfigError, match="no such file"):
        get_metric("embedding", model="/nonexistent/model.onnx")
    m = get_metric("embedding", model=str(tiny_onnx))
    assert len(m.model_sha256) == 64
    full = np.ones((SIZE, SIZE), bool)
    f = m.extract(gray(data.camera()), full)
    assert f.shape == (16 * 8 * 8,) and abs(np.linalg.norm(f) - 1) < 1e-9
    assert m.compare(f, f) == 1.0
    assert m.compare(f, m.extract(gray(data.coins()), full)) < 0.99


def test_explain_gives_each_metrics_evidence():
    from similarity import explain

    base = gray(data.camera())
    full = np.ones((SIZE, SIZE), bool)
    m = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), 10, 1.0)
    moved = cv2.warpAffine(base, m, (SIZE, SIZE), borderMode=cv2.BORDER_REFLECT)
    a = WorkImage("a", base, full, np.eye(3))
    b = WorkImage("b", moved, full, np.eye(3))
    ev = explain(a, b, "sift")
    assert ev.metric == "sift" and ev.similarity > 0.5
    assert ev.inliers.sum() >= 10 and ev.matches.shape[1] == 2
    # b brought back onto a: the difference on valid pixels is small
    assert ev.difference[ev.valid].mean() < 0.05
    assert np.abs(base - moved).mean() > 2 * ev.difference[ev.valid].mean()
    for name in ("ssim", "cw-ssim"):
        e = explain(a, b, name)
        assert e.local_map is not None and 0 <= e.local_map.min() and e.local_map.max() <= 1
        assert e.similarity == pytest.approx(
            get_metric(name).compare(
                get_metric(name).extract(base, full), get_metric(name).extract(moved, full)
            )
        )
    mse = explain(a, b, "mse")
    assert mse.local_map is None and mse.transform is None
    np.testing.assert_allclose(mse.difference, np.abs(base - moved), atol=1e-6)
