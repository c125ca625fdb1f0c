"""Pair evidence: what shows why two images are similar under a metric."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from preprocessing.work import WorkImage

from .base import Metric
from .cache import CacheStats, FeatureCache, metric_key, work_key
from .pairwise import _features
from .registry import get_metric

__all__ = ["PairEvidence", "explain"]


@dataclass(frozen=True, eq=False)
class PairEvidence:
    """Evidence for one pair under one metric.

    Attributes
    ----------
    metric : str
    similarity : float
        The metric's similarity of the pair, as in the matrix.
    image_a, image_b : (M, N) ndarray
        The two work images.
    b_on_a : (M, N) ndarray
        ``image_b`` brought onto ``image_a`` by the fitted transform when the
        metric fits one (SIFT), else ``image_b`` itself.
    valid : (M, N) ndarray of bool
        Pixels valid in ``image_a`` and in ``b_on_a``.
    difference : (M, N) ndarray
        ``|image_a - b_on_a|`` on valid pixels, 0 elsewhere.
    local_map : (M', N') ndarray or None
        Local similarity in [0, 1] (SSIM, CW-SSIM).
    keypoints_a, keypoints_b, matches, inliers, transform
        SIFT: keypoint positions (col, row), mutual matches (index pairs),
        RANSAC inlier flags, and the 3 x 3 transform from a to b.
    contours_a, contours_b, deviation, mirrored, aligned
        Contour: A's contour pixels and B's carried onto A, ``(col, row)``;
        for each of B's, its distance in work-image pixels to A's nearest
        contour of a compatible orientation (NaN off the overlap); whether B's
        mirror image matched better (``image_b`` and ``b_on_a`` are then the
        mirror image); whether a transform was fitted; ``sigma``, the scale
        (Gaussian sigma, work-image px) at which the shown contours were found.
    """

    metric: str
    similarity: float
    image_a: np.ndarray
    image_b: np.ndarray
    b_on_a: np.ndarray
    valid: np.ndarray
    difference: np.ndarray
    local_map: np.ndarray | None = None
    keypoints_a: np.ndarray | None = None
    keypoints_b: np.ndarray | None = None
    matches: np.ndarray | None = None
    inliers: np.ndarray | None = None
    transform: np.ndarray | None = None
    contours_a: np.ndarray | None = None
    contours_b: np.ndarray | None = None
    deviation: np.ndarray | None = None
    mirrored: bool = False
    aligned: bool | None = None
    sigma: float | None = None


_EXTRA = (
    "local_map", "keypoints_a", "keypoints_b", "matches", "inliers", "transform",
    "contours_a", "contours_b", "deviation",
)  # fmt: skip


def explain(
    image_a: WorkImage,
    image_b: WorkImage,
    metric: Metric | str,
    *,
    cache: FeatureCache | None = None,
    **params: Any,
) -> PairEvidence:
    """Evidence for the similarity of two work images under ``metric``.

    Parameters
    ----------
    image_a, image_b : WorkImage
    metric : Metric or str
        A metric object or a registered name (with ``params``).
    cache : FeatureCache, optional
        Features are read from it when the analysis computed them (a pair's
        contour evidence at 640 px spent 1.0 s of its 1.5 s extracting the two
        images' features again), and kept in it when not.

    Returns
    -------
    PairEvidence
    """
    m = get_metric(metric, **params) if isinstance(metric, str) else metric
    # through the cache as the analysis' own extraction (same keys; one pair's images)
    keys = None if cache is None else [work_key(image_a), work_key(image_b)]
    fa, fb = _features([image_a, image_b], m, keys, cache, metric_key(m), CacheStats(), None, None)
    extra = m.evidence(fa, fb)
    a = np.asarray(image_a.gray, np.float32)
    b = np.asarray(image_b.gray, np.float32)
    mask_b: np.ndarray = np.asarray(image_b.mask, np.float32)
    mirrored = bool(extra.get("mirrored", False))
    if mirrored:  # the metric matched B's mirror image; its transform starts from there
        b = np.ascontiguousarray(b[:, ::-1])
        mask_b = np.ascontiguousarray(mask_b[:, ::-1])
    transform = extra.get("transform")
    if transform is not None:
        size = a.shape[::-1]
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        b_on_a = cv2.warpPerspective(b, transform, size, flags=flags, borderValue=0.0)
        mask_b = cv2.warpPerspective(mask_b, transform, size, flags=flags, borderValue=0.0)
    else:
        b_on_a = b
    valid = np.asarray(image_a.mask, bool) & (mask_b >= 0.99)
    difference = np.where(valid, np.abs(a - b_on_a), 0.0).astype(np.float32)
    return PairEvidence(
        metric=m.name,
        similarity=m.compare(fa, fb),
        image_a=a,
        image_b=b,
        b_on_a=np.clip(b_on_a, 0, 1).astype(np.float32),
        valid=valid,
        difference=difference,
        mirrored=mirrored,
        aligned=extra.get("aligned"),  # type: ignore[arg-type]
        sigma=extra.get("sigma"),  # type: ignore[arg-type]
        **{k: extra.get(k) for k in _EXTRA},
    )
