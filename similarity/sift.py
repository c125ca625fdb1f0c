"""SIFT keypoints verified by RANSAC: how much of two images' structure matches geometrically."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np

from preprocessing.keypoints import (
    MINIMAL_SAMPLE,
    MODELS,
    Keypoints,
    detect_rootsift,
    fit_model,
    mutual_matches,
)

from .base import Metric

__all__ = ["SIFT", "SIFTFeatures", "SIFTMatch"]

_MODELS = MODELS
_MINIMAL = MINIMAL_SAMPLE


#: Keypoint positions ``(col, row)``, RootSIFT descriptors, and the image shape.
SIFTFeatures = Keypoints


class SIFTMatch(NamedTuple):
    """The verified matching of two feature sets (for pair evidence)."""

    pairs: np.ndarray  # (m, 2) int: indices into a and b of mutual ratio-test matches
    inliers: np.ndarray  # (m,) bool: RANSAC inliers among the pairs
    transform: np.ndarray | None  # 3x3, maps positions in a to positions in b
    similarity: float


@dataclass(frozen=True)
class SIFT(Metric):
    """Geometrically verified SIFT matches, as a similarity in [0, 1].

    Features (once per image): up to ``max_keypoints`` SIFT keypoints detected
    inside the image's valid mask (eroded by ``border`` px so the canvas
    padding's edge makes none), with RootSIFT descriptors; with
    ``min_detected``, SIFT's contrast threshold is lowered (down to 1/16) until
    that many are found (default 0: OpenCV's threshold; the benchmark found no
    gain in lowering it for this metric, docs/accuracy.md).

    Raw score (once per pair): mutual nearest neighbours that pass Lowe's
    ratio test in both directions are verified with RANSAC on a ``model``
    (``similarity``, ``affine`` or ``homography``; reprojection threshold
    ``ransac_px``); the raw score is the number of inliers ``I``.

    Transform: with ``m = sqrt(k_a * k_b)`` keypoints available (the geometric
    mean of the two counts, so a copy that lost most of its structure, to
    blur or to a tight crop, cannot saturate on its few remaining keypoints)
    and ``c`` the model's minimal sample (2, 3, 4; that many inliers happen
    by chance),
    ``similarity = clip((I - c) / (saturation * m - c), 0, 1)``: 0 at chance
    level, rising linearly, saturating at 1 once a fraction ``saturation``
    of the available keypoints are inliers (default 0.5: on the sample
    artworks at 256 px, copies of one print or photographs of one work have
    inlier shares of 0.25-0.6, pairs of different works at most 0.17).
    Monotone in ``I``; symmetric
    (matching is mutual and RANSAC is seeded; the pair is always ordered the
    same way); identical feature sets give exactly 1.0. An image with fewer
    than ``min_keypoints`` keypoints has similarity 0 to every other image
    (and 1 to itself).

    References
    ----------
    D. G. Lowe, "Distinctive image features from scale-invariant keypoints",
    IJCV 60(2), 91-110, 2004. :doi:`10.1023/B:VISI.0000029664.99615.94`
    R. Arandjelovic and A. Zisserman, "Three things everyone should know to
    improve object retrieval", CVPR 2012. :doi:`10.1109/CVPR.2012.6248018`
    M. A. Fischler and R. C. Bolles, "Random sample consensus", Comm. ACM
    24(6), 381-395, 1981. :doi:`10.1145/358669.358692`

    Examples
    --------
    >>> import numpy as np
    >>> from skimage import data
    >>> img = data.camera()[::2, ::2].astype(np.float32) / 255
    >>> m = SIFT()
    >>> f = m.extract(img, np.ones(img.shape, bool))
    >>> m.compare(f, f)
    1.0
    """

    name: ClassVar[str] = "sift"
    # 2: with min_detected, the keypoints in the order of the one detection that finds them
    # (preprocessing.keypoints._adaptive); the default (min_detected = 0) is detected as in 1;
    # 3: the matches listed by position before RANSAC (preprocessing.keypoints.mutual_matches)
    version: ClassVar[str] = "3"
    saturates: ClassVar[bool] = True

    max_keypoints: int = 1000
    ratio: float = 0.8
    model: str = "affine"
    ransac_px: float = 3.0
    saturation: float = 0.5
    min_keypoints: int = 8
    min_detected: int = 0
    border: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.model not in _MODELS:
            raise ValueError(f"model must be one of {', '.join(_MODELS)}, got {self.model!r}")
        if not 0 < self.ratio < 1 or not 0 < self.saturation <= 1:
            raise ValueError("ratio must be in (0, 1) and saturation in (0, 1]")
        if self.max_keypoints < self.min_keypoints or self.min_keypoints < _MINIMAL[self.model]:
            raise ValueError("need max_keypoints >= min_keypoints >= the model's minimal sample")
        if self.min_detected < 0:
            raise ValueError(f"min_detected must be >= 0, got {self.min_detected}")

    def extract(self, image: np.ndarray, mask: np.ndarray) -> SIFTFeatures:
        return detect_rootsift(
            image,
            mask,
            max_keypoints=self.max_keypoints,
            border=self.border,
            min_detected=self.min_detected,
        )

    def match(self, a: SIFTFeatures, b: SIFTFeatures) -> SIFTMatch:
        """Mutual ratio-test matches of ``a`` and ``b``, verified by RANSAC."""
        pairs = mutual_matches(a, b, ratio=self.ratio)
        c = _MINIMAL[self.model]
        available = float(np.sqrt(len(a.points) * len(b.points)))
        none = SIFTMatch(pairs, np.zeros(len(pairs), bool), None, 0.0)
        if min(len(a.points), len(b.points)) < self.min_keypoints or len(pairs) <= c:
            return none
        mat, inliers = fit_model(
            a.points[pairs[:, 0]],
            b.points[pairs[:, 1]],
            self.model,
            ransac_px=self.ransac_px,
            seed=self.seed,
            max_iters=2000,
            confidence=0.995,
        )
        if mat is None:
            return none
        count = int(inliers.sum())
        sim = (count - c) / (self.saturation * available - c)
        return SIFTMatch(pairs, inliers, mat, float(min(1.0, max(0.0, sim))))

    def evidence(self, a: SIFTFeatures, b: SIFTFeatures) -> dict[str, object]:
        """Keypoints, mutual matches, RANSAC inliers and the fitted transform (a -> b)."""
        m = self.match(a, b)
        return {
            "keypoints_a": a.points,
            "keypoints_b": b.points,
            "matches": m.pairs,
            "inliers": m.inliers,
            "transform": m.transform,
        }

    def compare(self, a: SIFTFeatures, b: SIFTFeatures) -> float:
        if _same(a, b):
            return 1.0
        # Order the pair canonically so RANSAC's seeded sampling sees the same
        # input whichever way round the pair is asked: exact symmetry.
        if _order_key(b) < _order_key(a):
            a, b = b, a
        return self.match(a, b).similarity


def _same(a: SIFTFeatures, b: SIFTFeatures) -> bool:
    return (
        a is b
        or a.points.shape == b.points.shape
        and np.array_equal(a.points, b.points)
        and np.array_equal(a.descriptors, b.descriptors)
    )


def _order_key(f: SIFTFeatures) -> tuple[int, bytes]:
    return len(f.points), f.points.tobytes()
