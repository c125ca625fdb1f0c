"""The shared metric suite, parametrised over every registered metric."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from factory import SAMPLES

from preprocessing import ConfigError, load_folder, make_work_image
from similarity import METRICS, SSIM, get_metric

SIZE = 128


@pytest.fixture(scope="module")
def bases():
    s = load_folder(SAMPLES / "images")
    picks = ["cartoon_a_1.jpg", "print_camera_2.jpg", "photo_coffee_1.jpg"]
    return [make_work_image(i, s[i].pixels, SIZE) for i in picks]


def feats(metric, im, gray=None):
    return metric.extract(im.gray if gray is None else gray, im.mask)


@pytest.fixture
def metric(request, tiny_onnx):
    """Every registered metric; the embedding one with a tiny model the tests build."""
    name = request.param
    return get_metric(name, model=str(tiny_onnx)) if name == "embedding" else METRICS[name]


def decreasing(values, strict, slack=0.0):
    steps = list(zip(values, values[1:], strict=False))
    if slack > 0:  # the metric declares how far its detection lets a step rise
        return all(b <= a + slack for a, b in steps) and values[0] > values[-1]
    if strict:
        return all(a > b for a, b in steps)
    return all(a >= b for a, b in steps) and values[0] > values[-1]


@pytest.mark.parametrize("metric", sorted(METRICS), indirect=True)
def test_identity_symmetry_bounds(metric, bases):
    m = metric
    f = [feats(m, b) for b in bases]
    for i, fi in enumerate(f):
        assert m.compare(fi, fi) == 1.0
        for j, fj in enumerate(f):
            s_ij, s_ji = m.compare(fi, fj), m.compare(fj, fi)
            assert 0.0 <= s_ij <= 1.0
            assert s_ij == s_ji
            if i != j:
                assert s_ij < 1.0


@pytest.mark.parametrize("metric", sorted(METRICS), indirect=True)
def test_monotone_under_growing_noise_and_blur(metric, bases):
    """Strictly decreasing; a stepped or saturating score (m.saturates) may tie between steps."""
    m = metric
    rng = np.random.default_rng(1)
    for base in bases:
        ref = feats(m, base)
        noise = rng.standard_normal(base.gray.shape).astype(np.float32)
        by_noise = [
            m.compare(ref, feats(m, base, np.clip(base.gray + s * noise, 0, 1)))
            for s in (0.02, 0.05, 0.1, 0.2)
        ]
        assert decreasing(by_noise, strict=not m.saturates, slack=m.order_slack), by_noise
        by_blur = [
            m.compare(ref, feats(m, base, cv2.GaussianBlur(base.gray, (0, 0), s)))
            for s in (0.5, 1.0, 2.0, 4.0)
        ]
        assert decreasing(by_blur, strict=not m.saturates, slack=m.order_slack), by_blur


@pytest.mark.parametrize("metric", sorted(METRICS), indirect=True)
def test_other_image_scores_below_a_perturbed_copy(metric, bases):
    m = metric
    rng = np.random.default_rng(2)
    for i, base in enumerate(bases):
        copy = np.clip(base.gray * 0.95 + 0.03 + 0.02 * rng.standard_normal(base.gray.shape), 0, 1)
        s_copy = m.compare(feats(m, base), feats(m, base, copy.astype(np.float32)))
        for j, other in enumerate(bases):
            if j != i:
                assert m.compare(feats(m, base), feats(m, other)) < s_copy


@pytest.mark.parametrize("kind", ["natural", "copy", "flat", "constant"])
def test_ssim_matches_scikit_image_on_the_valid_region(bases, kind):
    """Atelier's float32 SSIM equals scikit-image's Gaussian SSIM (float64, same window and
    constants) to 1e-5 on the mean over the region both compute (away from the borders),
    also on flat and constant images where float32 cancellation would show."""
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(3)
    a = bases[0].gray.astype(np.float64)
    b = {
        "natural": bases[1].gray.astype(np.float64),
        "copy": np.clip(a * 0.95 + 0.03 + rng.normal(0, 0.003, a.shape), 0, 1),
        "flat": np.where(a > 0.5, 0.9, 0.2) + rng.normal(0, 1e-3, a.shape),
        "constant": np.full(a.shape, 0.9),
    }[kind]
    if kind == "constant":
        a = np.full(a.shape, 0.7)
    m = SSIM()
    full = np.ones(a.shape, bool)
    ours = m.ssim_map(m.extract(a, full), m.extract(b, full))
    _, ref = structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0,
        full=True,
    )  # fmt: skip
    inner = (slice(8, -8), slice(8, -8))
    assert abs(float(ours[inner].mean()) - float(ref[inner].mean())) <= 1e-5
    np.testing.assert_allclose(ours[inner], ref[inner], atol=5e-4)
    # identical inputs: exactly 1, whatever the image
    assert m.compare(m.extract(b, full), m.extract(b.copy(), full)) == 1.0


def test_ssim_compares_only_pixels_valid_in_both():
    m = SSIM()
    rng = np.random.default_rng(0)
    img = rng.random((64, 64), dtype=np.float32)
    other = img.copy()
    other[:, 40:] = rng.random((64, 24), dtype=np.float32)  # differs only on the right
    mask = np.zeros((64, 64), bool)
    mask[:, :32] = True  # a's valid region excludes the differing part
    s = m.compare(m.extract(img, mask), m.extract(other, np.ones_like(mask)))
    assert s > 0.99


def test_unknown_metric_and_parameter_are_clear():
    with pytest.raises(ConfigError, match="unknown metric 'nope'; valid metrics: .*ssim"):
        get_metric("nope")
    with pytest.raises(ConfigError, match="unknown parameter.*window.*valid: data_range"):
        get_metric("ssim", window=3)
    assert get_metric("ssim", sigma=2.0).sigma == 2.0
