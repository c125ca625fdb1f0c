"""Equalization of brightness, contrast and sharpness across a set of images.

All three are measured and changed on CIELAB lightness L* (0-100), so the
colour (a*, b*) of every pixel is kept:

- brightness: the mean of L*;
- contrast: the standard deviation of L*;
- sharpness: the mean gradient magnitude of L* (central differences, L* units
  per pixel), a Tenengrad-type focus measure.

Brightness and contrast are matched with one affine map of L*. Sharpness is
matched by really changing sharpness: images below the target are sharpened
with an unsharp mask, images above it are softened with a Gaussian, and the
amount is found by bisection so that the measure, taken after the brightness
and contrast map, lands within ``tolerance`` (default 5 %) of the target.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from skimage.color import lab2rgb, rgb2lab

from .errors import ConfigError

__all__ = ["MEASURES", "EqualizeResult", "measure", "equalize"]

#: The measures that can be equalized, in order.
MEASURES = ("brightness", "contrast", "sharpness")

_UNSHARP_SIGMA = 1.0  # radius of the unsharp mask
_MAX_SHARPEN = 32.0  # largest unsharp amount searched
_MAX_BLUR = 6.0  # largest Gaussian sigma searched
_SEARCH_STEPS = 30


def _sharpness(lightness: np.ndarray) -> float:
    gy, gx = np.gradient(lightness)
    return float(np.mean(np.hypot(gx, gy)))


def measure(image: np.ndarray) -> dict[str, float]:
    """Brightness, contrast and sharpness of an RGB image, on CIELAB L*.

    Parameters
    ----------
    image : (M, N, 3) ndarray
        RGB in [0, 1].

    Returns
    -------
    dict
        ``brightness`` (mean L*), ``contrast`` (std of L*), ``sharpness``
        (mean gradient magnitude of L*).
    """
    lightness = rgb2lab(image)[..., 0]
    return _measure_l(lightness)


def _measure_l(lightness: np.ndarray) -> dict[str, float]:
    return {
        "brightness": float(lightness.mean()),
        "contrast": float(lightness.std()),
        "sharpness": _sharpness(lightness),
    }


@dataclass(frozen=True, eq=False)
class EqualizeResult:
    """Equalized images and the measures before and after.

    Attributes
    ----------
    images : list of (M, N, 3) ndarray
        RGB in [0, 1], same shapes as the inputs.
    measures : tuple of str
        The measures that were equalized.
    target : dict
        The target value of each measure.
    before, after : list of dict
        Per image, the three measures.
    notes : list of str
        Per image, what was done to its sharpness (or why the target was missed).
    """

    images: list[np.ndarray]
    measures: tuple[str, ...]
    target: dict[str, float]
    before: list[dict[str, float]]
    after: list[dict[str, float]]
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, float]]:
        """Set mean and standard deviation of each measure, before and after."""
        out = {}
        for m in MEASURES:
            b = np.array([row[m] for row in self.before])
            a = np.array([row[m] for row in self.after])
            out[m] = {
                "mean_before": float(b.mean()),
                "std_before": float(b.std()),
                "mean_after": float(a.mean()),
                "std_after": float(a.std()),
            }
        return out


def _tone_map(
    lightness: np.ndarray, target: dict[str, float], measures: Sequence[str]
) -> np.ndarray:
    mean, std = float(lightness.mean()), float(lightness.std())
    out = lightness
    if "contrast" in measures and std > 1e-6:
        out = (out - mean) * (target["contrast"] / std) + mean
    if "brightness" in measures:
        out = out + (target["brightness"] - mean)
    return np.clip(out, 0.0, 100.0)


def _filtered(lightness: np.ndarray, amount: float) -> np.ndarray:
    """Positive amount: unsharp mask of that strength; negative: Gaussian of sigma -amount."""
    if amount > 0:
        blurred = cv2.GaussianBlur(lightness, (0, 0), _UNSHARP_SIGMA)
        return lightness + amount * (lightness - blurred)
    if amount < 0:
        return cv2.GaussianBlur(lightness, (0, 0), -amount)
    return lightness


def _match_sharpness(
    lightness: np.ndarray,
    target: dict[str, float],
    measures: Sequence[str],
    tolerance: float,
) -> tuple[np.ndarray, str]:
    goal = target["sharpness"]

    def result(amount: float) -> tuple[np.ndarray, float]:
        out = _tone_map(_filtered(lightness, amount), target, measures)
        return out, _sharpness(out)

    current, value = result(0.0)
    if goal <= 0 or abs(value - goal) <= tolerance * goal:
        return current, "sharpness already within tolerance"
    sharpen = value < goal
    lo, hi = 0.0, (_MAX_SHARPEN if sharpen else _MAX_BLUR)
    best, best_err, best_amount = current, abs(value - goal), 0.0
    for _ in range(_SEARCH_STEPS):
        mid = (lo + hi) / 2
        amount = mid if sharpen else -mid
        out, value = result(amount)
        err = abs(value - goal)
        if err < best_err:
            best, best_err, best_amount = out, err, amount
        if err <= tolerance * goal:
            break
        # sharpening raises the measure, blurring lowers it
        if (value < goal) == sharpen:
            lo = mid
        else:
            hi = mid
    what = (
        f"unsharp mask, amount {best_amount:.3g}"
        if best_amount > 0
        else f"Gaussian blur, sigma {-best_amount:.3g}"
    )
    if best_err > tolerance * goal:
        what += f" (target missed by {100 * best_err / goal:.1f} %)"
    return best, what


def _equalize_one(
    image: np.ndarray, target: dict[str, float], measures: Sequence[str], tolerance: float
) -> tuple[np.ndarray, dict[str, float], str]:
    lab = rgb2lab(image)
    lightness = lab[..., 0]
    if "sharpness" in measures:
        new_l, note = _match_sharpness(lightness, target, measures, tolerance)
    else:
        new_l, note = _tone_map(lightness, target, measures), ""
    lab = lab.copy()
    lab[..., 0] = new_l
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rgb = np.clip(lab2rgb(lab), 0.0, 1.0).astype(np.float32)
    for w in caught:  # out-of-gamut colours clipped on the way back to sRGB: say so
        note = f"{note}; {w.message}" if note else str(w.message)
    return rgb, measure(rgb), note


def equalize(
    images: Sequence[np.ndarray],
    *,
    measures: Sequence[str] = MEASURES,
    reference: int | None = None,
    tolerance: float = 0.05,
    map_fn: Callable | None = None,
) -> EqualizeResult:
    """Match brightness, contrast and/or sharpness across images.

    Parameters
    ----------
    images : sequence of (M, N, 3) ndarray
        RGB in [0, 1]; shapes may differ.
    measures : sequence of str
        Any of ``MEASURES``; the others are left unchanged.
    reference : int, optional
        Index of the image whose measures are the target. By default the
        target is the median of the set.
    tolerance : float
        Relative tolerance of the sharpness search.
    map_fn : callable, optional
        ``map_fn(fn, items)`` returning ``[fn(*item) for item in items]`` in
        order, e.g. over a process pool; in this process when ``None``.

    Returns
    -------
    EqualizeResult

    Raises
    ------
    ConfigError
        Unknown measure, or a reference index out of range.

    Notes
    -----
    Lightness is CIE 1976 L*a*b* L* (D65). Clipping L* to [0, 100] after the
    affine map can leave brightness and contrast slightly off target for
    images with many clipped pixels; the after-table shows the values reached.

    References
    ----------
    J. M. Tenenbaum, "Accommodation in computer vision", PhD thesis, Stanford
    University, 1970 (the gradient-magnitude focus measure). S. Pertuz,
    D. Puig and M. A. Garcia, "Analysis of focus measure operators for
    shape-from-focus", Pattern Recognition 46(5), 1415-1432, 2013.
    :doi:`10.1016/j.patcog.2012.11.011`
    """
    # long: the numpydoc docstring makes this function over 80 lines; its code is not
    measures = tuple(measures)
    unknown = sorted(set(measures) - set(MEASURES))
    if unknown:
        raise ConfigError(
            f"unknown equalization measure(s) {', '.join(unknown)}; valid: {', '.join(MEASURES)}"
        )
    n = len(images)
    if reference is not None and not 0 <= reference < n:
        raise ConfigError(
            f"equalization reference index {reference} is out of range for {n} images"
        )
    before = [measure(im) for im in images]
    if reference is not None:
        target = dict(before[reference])
    else:
        target = {m: float(np.median([row[m] for row in before])) for m in MEASURES}
    if not measures or n == 0:
        return EqualizeResult(
            [im.astype(np.float32) for im in images],
            measures,
            target,
            before,
            list(before),
            [""] * n,
        )
    items = [(im, target, measures, tolerance) for im in images]
    if map_fn is None:
        done = [_equalize_one(*item) for item in items]
    else:
        done = map_fn(_equalize_one, items)
    return EqualizeResult(
        images=[d[0] for d in done],
        measures=measures,
        target=target,
        before=before,
        after=[d[1] for d in done],
        notes=[d[2] for d in done],
    )
