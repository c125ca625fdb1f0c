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
    last detection is kept; an image that has that many at the default is
    detected exactly as without it.

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
        lowest. Where the halving stops is read from one detection at the
        lowest threshold (:func:`_first_threshold`), so such an image costs
        two detections, not five, and one when it stops at the lowest, and
        keeps the same keypoints.

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
    threshold = CONTRAST_THRESHOLD
    if target > 0:
        threshold, done = _first_threshold(img, detect, max_keypoints, target)
        if done is not None:
            return _rootsift((img.shape[0], img.shape[1]), *done)
    while True:
        sift = cv2.SIFT.create(nfeatures=max_keypoints, contrastThreshold=threshold)
        kps, desc = sift.detectAndCompute(img, detect)
        found = 0 if desc is None else len(kps)
        if found >= target or threshold <= _LOWEST_CONTRAST:
            break
        threshold /= 2
    return _rootsift((img.shape[0], img.shape[1]), kps, desc)


def _rootsift(
    shape: tuple[int, int], kps: Sequence[cv2.KeyPoint], desc: np.ndarray | None
) -> Keypoints:
    """OpenCV's keypoints and SIFT descriptors as :class:`Keypoints` (RootSIFT)."""
    if desc is None or not len(kps):
        return Keypoints(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32), shape)
    desc = desc / (np.abs(desc).sum(axis=1, keepdims=True) + 1e-7)
    points = np.array([k.pt for k in kps], np.float32)
    return Keypoints(points, np.sqrt(desc).astype(np.float32), shape)


def _first_threshold(
    img: np.ndarray, detect: np.ndarray, max_keypoints: int, target: int
) -> tuple[float, tuple[list[cv2.KeyPoint], np.ndarray | None] | None]:
    """The contrast threshold the halving of :func:`detect_rootsift` would stop at, read
    from one detection at the lowest threshold instead of up to five detections; and when
    that is the lowest, that detection's keypoints in the mask and their descriptors
    (the halving's last detection, made once), else None.

    OpenCV's SIFT keeps a keypoint at a threshold when ``response * nOctaveLayers`` (3)
    reaches it; its ``nfeatures`` cut then keeps the strongest responses (ties at the
    cut included) and only then drops keypoints outside the mask, and it describes each
    keypoint on its own. So one detection at the lowest threshold without the mask holds
    every keypoint the cut keeps at any higher threshold: a keypoint passing there is
    among the strongest ``max_keypoints`` (else as many stronger ones pass, and the cut
    there is these). Counting, for each threshold of the halving, the detection's
    keypoints in the mask that pass it gives the first at which the loop's count reaches
    ``target``; the loop starts there, so the keypoints and their order are the loop's
    own (its last detection is made as before), and it goes on halving should the real
    count fall short. At the lowest, the detection's keypoints in the mask (OpenCV's own
    rounding of the position) are the loop's last detection's: a padded or faint image
    costs one detection, not two. (SIFT's pre-filter on the raw value can make the count
    here higher than the real one, never lower, except in the rare case where such a
    keypoint outside the mask takes a place in the cut. Measured: the same keypoints as
    the loop in 2,450 of 2,450 detections, the 45 samples at 256 and 640 px and 1,090
    generated images at 256 px, each also mirrored; made without the mask and kept at
    the lowest, the same keypoints and descriptors as that count in 792 of 792
    detections (docs/scale.md); ``tests/preprocessing/test_keypoints.py`` pins it
    against the loop.)
    """
    sift = cv2.SIFT.create(nfeatures=max_keypoints, contrastThreshold=_LOWEST_CONTRAST)
    found, desc = sift.detectAndCompute(img, None)
    if desc is None or not found:
        return _LOWEST_CONTRAST, ([], None)
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
            return threshold, None
        threshold /= 2
    keep = np.flatnonzero(inside)
    return threshold, ([found[k] for k in keep.tolist()], desc[keep])


def mutual_matches(a: Keypoints, b: Keypoints, *, ratio: float) -> np.ndarray:
    """Mutual nearest neighbours passing Lowe's ratio test in both directions.

    Descriptors have unit L2 norm, so squared distances are ``2 - 2 a.b``: one
    matrix product serves both directions.

    Returns
    -------
    (m, 2) ndarray of int
        Index pairs into ``a`` and ``b``, sorted by the index into ``a``.
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
    return np.stack([i[mutual], ab[mutual]], axis=1).astype(int)


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
