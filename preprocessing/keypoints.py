"""RootSIFT keypoints, mutual matching and RANSAC fitting, shared by the feature-based
alignment (``preprocessing.align``) and the SIFT metric (``similarity.sift``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numpy as np

__all__ = [
    "MODELS",
    "MINIMAL_SAMPLE",
    "Keypoints",
    "detect_rootsift",
    "mutual_matches",
    "fit_model",
]

MODELS = ("similarity", "affine", "homography")

#: Points a model needs; RANSAC always finds that many "inliers", so they are chance level.
MINIMAL_SAMPLE = {"similarity": 2, "affine": 3, "homography": 4}


class Keypoints(NamedTuple):
    """Keypoint positions ``(col, row)``, RootSIFT descriptors, and the image shape."""

    points: np.ndarray  # (k, 2) float32
    descriptors: np.ndarray  # (k, 128) float32, unit L2 norm
    shape: tuple[int, int]


#: OpenCV's default SIFT contrast threshold, and the lowest the adaptive detection goes:
#: 1/16 of it.
CONTRAST_THRESHOLD = 0.04
_LOWEST_CONTRAST = CONTRAST_THRESHOLD / 16
#: OpenCV's default nOctaveLayers, which its contrast test multiplies the response by.
_OCTAVE_LAYERS = 3


def detect_rootsift(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    max_keypoints: int,
    border: int,
    min_detected: int = 0,
) -> Keypoints:
    """SIFT keypoints inside ``mask`` (eroded by ``border`` px), RootSIFT descriptors.

    OpenCV's SIFT takes uint8: the image is clipped to [0, 1] first so nothing
    wraps around. RootSIFT: L1-normalise, then square root (unit L2 norm).

    SIFT's contrast threshold is absolute: a faint image (a low-contrast
    drawing, a photograph under glare, a worn impression) passes few or no
    keypoints at the default. With ``min_detected``, while fewer than that many
    are found the threshold is halved, down to 1/16 of the default, and the
    last detection is kept; an image that has that many at the default keeps
    the keypoints it has without it (in another order, below).

    Parameters
    ----------
    image : (M, N) ndarray
        Gray work image in [0, 1].
    mask : (M, N) ndarray of bool
        Where the image holds content.
    max_keypoints : int
        OpenCV's ``nfeatures``: the strongest this many are kept. OpenCV makes
        this cut over the whole image *before* it drops keypoints outside the
        mask, so a padded image can hold fewer.
    border : int
        Pixels the mask is eroded by (the padding's edge makes no keypoint).
    min_detected : int
        Lower the threshold while fewer keypoints than this (at most
        ``max_keypoints``) are found; 0 (default) keeps OpenCV's threshold.
        With ``min_detected = max_keypoints`` the keypoint budget is filled:
        at 256 px most images hold fewer than 300 keypoints at the default
        threshold, so most, not only faint ones, are then detected at a lower
        one, and a padded image, whose count stays under the budget, at the
        lowest. The halving's keypoints are read from one detection at the
        lowest threshold (:func:`_adaptive`), so the image costs one
        detection, not up to five, and keeps the same keypoints.

    Returns
    -------
    Keypoints

    References
    ----------
    D. G. Lowe, IJCV 60(2), 91-110, 2004. :doi:`10.1023/B:VISI.0000029664.99615.94`
    R. Arandjelovic and A. Zisserman, CVPR 2012. :doi:`10.1109/CVPR.2012.6248018`
    """
    img = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    size = 2 * border + 1
    detect = cv2.erode(np.asarray(mask, np.uint8), np.ones((size, size), np.uint8))
    target = min(min_detected, max_keypoints)
    if target > 0:
        return _rootsift(
            (img.shape[0], img.shape[1]), *_adaptive(img, detect, max_keypoints, target)
        )
    sift = cv2.SIFT.create(nfeatures=max_keypoints, contrastThreshold=CONTRAST_THRESHOLD)
    return _rootsift((img.shape[0], img.shape[1]), *sift.detectAndCompute(img, detect))


def _rootsift(
    shape: tuple[int, int], kps: Sequence[cv2.KeyPoint], desc: np.ndarray | None
) -> Keypoints:
    """OpenCV's keypoints and SIFT descriptors as :class:`Keypoints` (RootSIFT)."""
    if desc is None or not len(kps):
        return Keypoints(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32), shape)
    desc = desc / (np.abs(desc).sum(axis=1, keepdims=True) + 1e-7)
    points = np.array([k.pt for k in kps], np.float32)
    return Keypoints(points, np.sqrt(desc).astype(np.float32), shape)


def _adaptive(
    img: np.ndarray, detect: np.ndarray, max_keypoints: int, target: int
) -> tuple[list[cv2.KeyPoint], np.ndarray | None]:
    """The keypoints and descriptors the halving of the contrast threshold would keep
    (:func:`detect_rootsift` with ``min_detected``), from one detection at the lowest
    threshold instead of one detection for each threshold tried.

    OpenCV's SIFT keeps a keypoint at a threshold when ``response * nOctaveLayers`` (3)
    reaches it; its ``nfeatures`` cut then keeps the strongest responses (ties at the
    cut included) and only then drops keypoints outside the mask, and it describes each
    keypoint on its own. So one detection at the lowest threshold without the mask holds
    every keypoint the cut keeps at any higher threshold: a keypoint passing there is
    among the strongest ``max_keypoints`` (else as many stronger ones pass, and the cut
    there is these). Counting, for each threshold of the halving, the keypoints in the
    mask that pass it gives the first at which the count reaches ``target`` (or the
    lowest); those keypoints, with their descriptors, are the ones a detection at that
    threshold with the mask keeps. Their order is this detection's, not that one's
    (OpenCV orders its cut by a partial sort of what it found, which differs between
    thresholds); SIFT's pre-filter on the raw value could in principle let this
    detection hold a keypoint that one would not. Measured: the same keypoints and
    descriptors as the halving loop in 306 of 306 detections (the 42 JPEG samples and
    60 generated images at 256 px, each whole, mirrored and padded);
    ``tests/preprocessing/test_keypoints.py`` pins it against the loop. A detection
    costs about 23 ms at 256 px on this machine, and most work images stop above the
    lowest threshold: they cost one detection, where counting first and then detecting
    at the threshold found cost two.
    """
    sift = cv2.SIFT.create(nfeatures=max_keypoints, contrastThreshold=_LOWEST_CONTRAST)
    found, desc = sift.detectAndCompute(img, None)
    if desc is None or not found:
        return [], None
    response = np.array([k.response for k in found], np.float32)
    points = np.array([k.pt for k in found], np.float32)
    # OpenCV's mask test: the pixel at (int)(y + 0.5f), (int)(x + 0.5f)
    rows = np.clip((points[:, 1] + np.float32(0.5)).astype(int), 0, img.shape[0] - 1)
    cols = np.clip((points[:, 0] + np.float32(0.5)).astype(int), 0, img.shape[1] - 1)
    inside = detect[rows, cols] > 0
    contrast = (response * np.float32(_OCTAVE_LAYERS)).astype(np.float64)
    threshold = CONTRAST_THRESHOLD
    while threshold > _LOWEST_CONTRAST:
        if np.count_nonzero((contrast >= threshold) & inside) >= target:
            break
        threshold /= 2
    keep = np.flatnonzero(inside & (contrast >= threshold))
    return [found[k] for k in keep.tolist()], desc[keep]


def mutual_matches(a: Keypoints, b: Keypoints, *, ratio: float) -> np.ndarray:
    """Mutual nearest neighbours passing Lowe's ratio test in both directions.

    Descriptors have unit L2 norm, so squared distances are ``2 - 2 a.b``: one
    matrix product serves both directions.

    Returns
    -------
    (m, 2) ndarray of int
        Index pairs into ``a`` and ``b``, listed by ``a``'s keypoint position
        (``x``, then ``y``, then ``b``'s), not by index: a fit on the matches
        (RANSAC's seeded samples are drawn by place in this list) then does not
        depend on the order in which the keypoints were listed. OpenCV's order
        is a partial sort that changes with the detection's threshold and
        version; in that order, the contour test's similarities moved in the
        last digits and one benchmark set's ARI by a tenth (docs/accuracy.md).
    """
    if len(a.points) < 2 or len(b.points) < 2:
        return np.zeros((0, 2), int)
    from ._fused import best_two

    sim = a.descriptors @ b.descriptors.T
    ratio2 = ratio * ratio
    # each row's (a's) and each column's (b's) nearest and the next: one pass
    ab, first_ab, second_ab, ba, first_ba, second_ba = best_two(sim)

    def passes(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        d1 = np.maximum(2.0 - 2.0 * first, 0.0)
        d2 = np.maximum(2.0 - 2.0 * second, 0.0)
        return d1 < ratio2 * d2

    ok_ab, ok_ba = passes(first_ab, second_ab), passes(first_ba, second_ba)
    i = np.arange(len(a.points))
    mutual = ok_ab & ok_ba[ab] & (ba[ab] == i)
    pairs = np.stack([i[mutual], ab[mutual]], axis=1).astype(int)
    at_a, at_b = a.points[pairs[:, 0]], b.points[pairs[:, 1]]
    return pairs[np.lexsort((at_b[:, 1], at_b[:, 0], at_a[:, 1], at_a[:, 0]))]


def fit_model(
    src: np.ndarray,
    dst: np.ndarray,
    model: str,
    *,
    ransac_px: float,
    seed: int,
    max_iters: int,
    confidence: float,
    refine_iters: int = 10,
) -> tuple[np.ndarray | None, np.ndarray]:
    """RANSAC fit of ``model`` mapping ``src`` positions to ``dst`` positions.

    Returns
    -------
    transform : (3, 3) ndarray or None
    inliers : (m,) ndarray of bool
    """
    none = np.zeros(len(src), bool)
    if len(src) < MINIMAL_SAMPLE[model]:
        return None, none
    src32 = np.asarray(src, np.float32)
    dst32 = np.asarray(dst, np.float32)
    cv2.setRNGSeed(seed)
    if model == "homography":
        mat, inl = cv2.findHomography(
            src32, dst32, cv2.RANSAC, ransac_px, maxIters=max_iters, confidence=confidence
        )
    else:
        fit = cv2.estimateAffinePartial2D if model == "similarity" else cv2.estimateAffine2D
        mat, inl = fit(
            src32,
            dst32,
            method=cv2.RANSAC,
            ransacReprojThreshold=ransac_px,
            maxIters=max_iters,
            confidence=confidence,
            refineIters=refine_iters,
        )
        if mat is not None:
            mat = np.vstack([mat, [0.0, 0.0, 1.0]])
    if mat is None or inl is None:
        return None, none
    return np.asarray(mat, np.float64), inl.ravel().astype(bool)
