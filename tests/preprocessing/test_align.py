"""Alignment: known transforms recovered, stacks brought into register, every combination."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from skimage import data

from preprocessing import AlignmentError, ConfigError, PreprocessConfig, WorkImage
from preprocessing.align import (
    ALIGN_METHODS,
    FEATURE_MODELS,
    MOTION_MODELS,
    STACKREG_REFERENCES,
    align,
    map_points,
)

SIZE = 256
CENTRE = (SIZE - 1) / 2


def base_gray():
    return cv2.resize(
        data.camera().astype(np.float32) / 255, (SIZE, SIZE), interpolation=cv2.INTER_AREA
    )


def work(gray, name="im"):
    return WorkImage(name, gray.astype(np.float32), np.ones(gray.shape, bool), np.eye(3))


def moved(gray, shift=(0.0, 0.0), angle=0.0, scale=1.0):
    """Content moved by (d_col, d_row), rotated by angle degrees (CCW), scaled, about the centre.

    Returns the image and the 3x3 matrix m with moved(m @ p) = gray(p).
    """
    m = cv2.getRotationMatrix2D((CENTRE, CENTRE), angle, scale)
    m[0, 2] += shift[0]
    m[1, 2] += shift[1]
    img = cv2.warpAffine(
        gray, m, (SIZE, SIZE), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
    )
    return np.clip(img, 0, 1), np.vstack([m, [0, 0, 1]])


def params(t):
    """Shift at the centre, rotation (degrees) and scale of a recovered 3x3 transform."""
    c, r = map_points(t, np.array([CENTRE]), np.array([CENTRE]))
    a = t[:2, :2] / t[2, 2]
    return (
        (c[0] - CENTRE, r[0] - CENTRE),
        np.degrees(np.arctan2(-a[0, 1], a[0, 0])),
        np.sqrt(abs(np.linalg.det(a))),
    )


CASES = {
    "shift": ({"shift": (7.3, -4.1)}, ["translation", "rigid", "scaled-rotation", "affine"]),
    "rotation": ({"angle": 5.0}, ["rigid", "scaled-rotation", "affine"]),
    "scale": ({"scale": 1.08}, ["scaled-rotation", "affine"]),
}


@pytest.mark.parametrize(
    "case,model",
    [(c, m) for c, (_, ms) in CASES.items() for m in ms] + [(c, "features") for c in CASES],
)
def test_known_transform_is_recovered(case, model):
    kwargs = CASES[case][0]
    ref = base_gray()
    img, m = moved(ref, **kwargs)
    kw = {"reference": "first"}
    if model == "features":
        kw["feature_model"] = "similarity"
    out = align([work(ref, "ref"), work(img, "mov")], method=model, **kw)
    t = out.images[1].transform
    (dc, dr), angle, scale = params(t)
    (ec, er), e_angle, e_scale = params(m)
    assert np.hypot(dc - ec, dr - er) <= 0.5, (dc, dr, ec, er)
    assert abs(angle - e_angle) <= 0.3
    assert abs(scale / e_scale - 1) <= 0.01
    q = out.quality[1]
    assert q.aligned and q.ncc_after > q.ncc_before


@pytest.mark.parametrize("fmodel", FEATURE_MODELS)
def test_feature_models_recover_a_similarity(fmodel):
    ref = base_gray()
    img, m = moved(ref, shift=(6.0, 3.0), angle=12.0, scale=0.92)
    out = align(
        [work(ref, "ref"), work(img, "mov")],
        method="features",
        reference="first",
        feature_model=fmodel,
    )
    grid = np.linspace(20, SIZE - 20, 5)
    cols, rows = (g.ravel() for g in np.meshgrid(grid, grid))
    got = map_points(out.images[1].transform, cols, rows)
    exp = map_points(m, cols, rows)
    assert np.hypot(got[0] - exp[0], got[1] - exp[1]).max() <= 0.75
    assert out.quality[1].inliers >= 50


def test_mean_alignment_brings_shifted_copies_into_register():
    ref = base_gray()
    rng = np.random.default_rng(0)
    shifts = rng.uniform(-9, 9, size=(8, 2))
    stack = [work(moved(ref, shift=tuple(s))[0], f"c{i}") for i, s in enumerate(shifts)]
    out = align(stack, method="translation", reference="mean", rounds=8)
    # where each aligned image samples the base's centre from, minus the true shift
    residual = np.array(
        [
            [
                map_points(im.transform, np.array([CENTRE]), np.array([CENTRE]))[k][0]
                - CENTRE
                - s[k]
                for k in (0, 1)
            ]
            for im, s in zip(out.images, shifts, strict=True)
        ]
    )
    before = np.linalg.norm(shifts - shifts.mean(axis=0), axis=1).mean()
    after = np.linalg.norm(residual - residual.mean(axis=0), axis=1).mean()
    assert after <= 0.1 * before, (before, after)
    assert out.rounds >= 2 and out.reference == "mean"
    assert all(q.ncc_after >= q.ncc_before for q in out.quality)
    # the borders a shift uncovers are invalid: the valid area is what the shift leaves
    for im in out.images:
        t_col, t_row = im.transform[0, 2], im.transform[1, 2]
        expected = (SIZE - abs(t_col)) * (SIZE - abs(t_row))
        assert abs(int(im.mask.sum()) - expected) <= 2 * 2 * SIZE, (im.mask.sum(), expected)


def test_iterated_mean_holds_one_aligned_set_at_a_time():
    import tracemalloc

    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.random((96, 96)).astype(np.float32), (0, 0), 3)
    stack = []
    for i in range(40):
        m = np.float32([[1, 0, rng.uniform(-3, 3)], [0, 1, rng.uniform(-3, 3)]])
        gray = cv2.warpAffine(base, m, (96, 96), borderMode=cv2.BORDER_REFLECT)
        stack.append(WorkImage(f"i{i}", gray, np.ones((96, 96), bool), np.eye(3)))
    one_set = sum(im.gray.nbytes + im.mask.nbytes for im in stack)
    tracemalloc.start()
    try:
        out = align(stack, method="translation", reference="mean", rounds=5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.rounds >= 2
    # measured: 1.43 sets beyond the inputs; 2.33 while a round's images arrived beside
    # the previous round's
    assert peak <= 1.8 * one_set, peak / one_set


ALL = [(m, r) for m in MOTION_MODELS for r in STACKREG_REFERENCES] + [
    ("features", r) for r in ("auto", "first")
]


@pytest.mark.parametrize("method,reference", ALL)
def test_every_combination_works_or_raises_the_documented_error(method, reference):
    ref = base_gray()
    stack = [work(moved(ref, shift=(d, -d))[0], f"i{d}") for d in (0.0, 2.0, 4.0)]
    if method == "bilinear" and reference == "previous":
        with pytest.raises(AlignmentError, match="bilinear model cannot align to the previous"):
            align(stack, method=method, reference=reference)
        with pytest.raises(ConfigError, match="bilinear model cannot align to the previous"):
            PreprocessConfig(align=method, reference=reference)
        return
    out = align(stack, method=method, reference=reference)
    assert len(out.images) == 3 and all(im.gray.shape == (SIZE, SIZE) for im in out.images)
    assert all(q.ncc_after >= q.ncc_before - 1e-3 for q in out.quality)


@pytest.mark.parametrize("method", [m for m in ALIGN_METHODS if m != "none"])
def test_identity_input_gives_identity_transform(method):
    g = base_gray()
    out = align(
        [work(g, "a"), work(g.copy(), "b")],
        method=method,
        reference="first" if method != "features" else "auto",
    )
    for im in out.images:
        t = im.transform
        assert np.allclose(t, np.eye(t.shape[0]), atol=2e-3), (method, t)


def test_image_id_reference_and_bad_references():
    g = base_gray()
    stack = [work(g, "a"), work(moved(g, shift=(3, 0))[0], "b")]
    out = align(stack, method="translation", reference="b")
    assert out.reference == "b" and np.allclose(out.images[1].transform, np.eye(3))
    with pytest.raises(AlignmentError, match="reference 'zz' is neither one of"):
        align(stack, method="translation", reference="zz")
    with pytest.raises(AlignmentError, match="reference 'mean' is neither one of auto, first"):
        align(stack, method="features", reference="mean")
    with pytest.raises(AlignmentError, match="unknown alignment 'warp'"):
        align(stack, method="warp")
    with pytest.raises(ConfigError, match="feature path aligns to one image"):
        PreprocessConfig(align="features", reference="previous")


def test_feature_path_falls_back_with_a_warning():
    g = base_gray()
    blank = np.full((SIZE, SIZE), 0.5, np.float32)
    out = align([work(g, "a"), work(blank, "blank")], method="features", reference="first")
    assert np.allclose(out.images[1].transform, np.eye(3))
    assert not out.quality[1].aligned and out.quality[1].note == "left unaligned"
    assert any("blank: too few feature matches" in w for w in out.warnings)


def test_pystackreg_mean_differs_from_iterated_mean_by_rounds():
    g = base_gray()
    stack = [work(moved(g, shift=(s, s / 2))[0], f"s{s}") for s in (-6.0, 0.0, 6.0)]
    one = align(stack, method="translation", rounds=1)
    many = align(stack, method="translation", rounds=6)
    assert one.rounds == 1 and many.rounds >= 2
    spread = [
        np.std(
            [
                map_points(im.transform, np.array([CENTRE]), np.array([CENTRE]))[0][0] - s
                for im, s in zip(r.images, (-6.0, 0.0, 6.0), strict=True)
            ]
        )
        for r in (one, many)
    ]
    assert spread[1] <= spread[0] + 1e-6


def test_no_uint8_wraparound_and_values_in_range():
    g = base_gray()
    g[:10] = 1.0
    out = align(
        [work(g, "a"), work(moved(g, shift=(5, 5))[0], "b")], method="affine", reference="first"
    )
    for im in out.images:
        assert im.gray.dtype == np.float32 and 0 <= im.gray.min() and im.gray.max() <= 1


_ = itertools  # parametrisation helpers above build the product by hand


def test_none_leaves_the_mean_and_reports_the_leave_one_out_correlation():
    g = base_gray()
    ims = [work(moved(g, (d, 0.0))[0], f"s{d}") for d in (0.0, 3.0, -4.0, 6.0)]
    ims[2] = WorkImage(
        "masked",
        ims[2].gray,
        np.pad(np.ones((SIZE, SIZE - 40), bool), ((0, 0), (40, 0))),
        np.eye(3),
    )
    out = align(ims, method="none")
    np.testing.assert_array_equal(out.mean_after, out.mean_before)
    for im, q in zip(ims, out.quality, strict=True):  # each with the mean of the others
        others = [o for o in ims if o is not im]
        total = sum(np.where(o.mask, o.gray, 0.0) for o in others)
        count = sum(o.mask.astype(float) for o in others)
        valid = im.mask & (count > 0)
        mean = total[valid] / count[valid]
        expected = np.corrcoef(im.gray[valid].astype(np.float64), mean)[0, 1]
        assert q.ncc_before == pytest.approx(expected, abs=1e-9)
        assert q.ncc_after == q.ncc_before


def test_leave_one_out_correlations_are_the_whole_means_to_the_bit():
    """Each image's NCC with the others' mean, formed only where it is read: the same
    floats as forming the whole leave-one-out mean image first (the earlier code)."""
    from preprocessing.align import _loo_ncc, _masked_sums, ncc

    rng = np.random.default_rng(5)
    base = base_gray()[::4, ::4]
    images = []
    for k in range(12):
        gray = np.clip(base + rng.normal(0, 0.03 * (k + 1), base.shape), 0, 1)
        mask = np.ones(base.shape, bool)
        mask[: 3 * k] = False  # padded by more and more: some rows only the first covers
        images.append(WorkImage(f"im{k}", gray.astype(np.float32), mask, np.eye(3)))
    total, count = _masked_sums(images)
    expected = []
    for im in images:
        others = count - im.mask
        mean = np.divide(
            total - np.where(im.mask, im.gray, 0.0),
            others,
            out=np.zeros_like(total),
            where=others > 0,
        )
        expected.append(ncc(im.gray, mean, im.mask & (others > 0)))
    assert _loo_ncc(images) == expected
    assert len(set(expected)) == len(images) and all(0.0 < v < 1.0 for v in expected)


def test_leave_one_out_correlations_on_threads_equal_one_loop():
    # from 64 images each half is computed on its own thread: the same values, in order
    from preprocessing.align import _loo_ncc, _masked_sums

    rng = np.random.default_rng(2)
    base = base_gray()[::4, ::4]
    images = []
    for k in range(70):
        gray = np.clip(base + rng.normal(0, 0.05 + k / 700, base.shape), 0, 1)
        im = work(gray.astype(np.float32), f"im{k}")
        if k % 7 == 0:  # some padded: their mask leaves a band out
            mask = np.ones(base.shape, bool)
            mask[: k % 20 + 3] = False
            im = WorkImage(im.id, im.gray, mask, im.transform)
        images.append(im)
    sums = _masked_sums(images)
    threaded = _loo_ncc(images, sums)
    one_by_one = [v for k in range(0, 70, 10) for v in _loo_ncc(images[k : k + 10], sums)]
    assert threaded == one_by_one
    # the noisier an image, the less it correlates with the others' mean
    assert threaded[1] > threaded[68] and all(0.0 < v < 1.0 for v in threaded)
