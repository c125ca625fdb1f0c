"""Equalization: the spread of each measure falls, colour is kept, sharpness is real."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data
from skimage.color import rgb2lab

from preprocessing import ConfigError
from preprocessing.equalize import MEASURES, equalize, measure


def varied_set(seed=0, n=9):
    """One photograph under known different brightness, contrast and blur."""
    base = cv2.resize(
        data.astronaut().astype(np.float32) / 255, (192, 192), interpolation=cv2.INTER_AREA
    )
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        b, c, s = rng.uniform(-0.15, 0.15), rng.uniform(0.55, 1.3), rng.uniform(0.0, 2.5)
        im = np.clip((base - 0.5) * c + 0.5 + b, 0, 1)
        if s > 0.3:
            im = cv2.GaussianBlur(im, (0, 0), s)
        out.append(im.astype(np.float32))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spread_of_each_measure_falls_by_at_least_80_percent(seed):
    r = equalize(varied_set(seed))
    for m, row in r.summary().items():
        assert row["std_before"] > 0
        assert row["std_after"] <= 0.2 * row["std_before"], (m, row)
    for after in r.after:  # each image lands within 5 % of the sharpness target (+ rounding)
        assert abs(after["sharpness"] - r.target["sharpness"]) <= 0.06 * r.target["sharpness"]


def test_only_the_chosen_measures_change():
    ims = varied_set()
    r = equalize(ims, measures=("brightness",))
    s = r.summary()
    assert s["brightness"]["std_after"] < 0.05 * s["brightness"]["std_before"]
    # contrast and sharpness are left as they were (up to the brightness shift's clipping)
    assert s["contrast"]["std_after"] > 0.5 * s["contrast"]["std_before"]
    assert s["sharpness"]["std_after"] > 0.5 * s["sharpness"]["std_before"]


def test_sharpness_really_changes_sharpness_not_intensity():
    ims = varied_set(n=6)
    r = equalize(ims, measures=("sharpness",))
    for before, after, note in zip(r.before, r.after, r.notes, strict=True):
        assert abs(after["brightness"] - before["brightness"]) < 1.0  # L* units
        if "unsharp" in note:
            assert after["sharpness"] > before["sharpness"]
        if "Gaussian" in note:
            assert after["sharpness"] < before["sharpness"]
    assert any("unsharp" in n for n in r.notes) and any("Gaussian" in n for n in r.notes)


def test_colour_is_kept():
    ims = varied_set(n=5)
    r = equalize(ims)
    for before, after in zip(ims, r.images, strict=True):
        ab_before = rgb2lab(before)[..., 1:].mean(axis=(0, 1))
        ab_after = rgb2lab(after)[..., 1:].mean(axis=(0, 1))
        np.testing.assert_allclose(ab_after, ab_before, atol=2.5)
        assert after.shape == before.shape and after.dtype == np.float32
        assert after.min() >= 0 and after.max() <= 1


def test_reference_image_sets_the_target():
    ims = varied_set()
    r = equalize(ims, reference=3)
    assert r.target == measure(ims[3])
    assert abs(r.after[0]["brightness"] - r.target["brightness"]) < 0.5


def test_measures_on_known_images():
    gray = np.full((32, 32, 3), 0.5, np.float32)
    m = measure(gray)
    assert m["brightness"] == pytest.approx(53.39, abs=0.05)  # L* of sRGB 0.5 gray
    # float32 Lab conversion: a constant image varies by ~1e-5 L*
    assert m["contrast"] == pytest.approx(0.0, abs=1e-4)
    assert m["sharpness"] == pytest.approx(0.0, abs=1e-4)
    assert list(MEASURES) == ["brightness", "contrast", "sharpness"]


def test_bad_options_are_refused():
    with pytest.raises(ConfigError, match="unknown equalization measure.*hue; valid: brightness"):
        equalize(varied_set(n=2), measures=("hue",))
    with pytest.raises(ConfigError, match="reference index 5 is out of range for 2 images"):
        equalize(varied_set(n=2), reference=5)
