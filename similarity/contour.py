"""Contour ("tracing") similarity: after alignment, do the two images' outlines coincide?"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import cv2
import numpy as np

from preprocessing.keypoints import Keypoints, detect_rootsift, fit_model, mutual_matches

from .base import Metric

__all__ = [
    "Contour",
    "ContourFeatures",
    "ContourSide",
    "PackedSide",
    "PreparedContour",
    "ContourMatch",
    "find_outlines",
    "mirror_side",
]

#: Distances are stored in 1/16 px steps in uint8, so they saturate at 255 / 16 px.
_DIST_STEPS = 16.0
_EYE = np.eye(3)


class ContourSide(NamedTuple):
    """The contours of one orientation of an image (as drawn, or mirrored).

    ``points`` are contour pixels ``(row, col)``; ``angles`` their gradient
    direction modulo pi (so dark-on-light and light-on-dark agree); ``distance``
    holds, for each orientation bin, the distance of every pixel to the nearest
    contour pixel of a compatible orientation (that bin or a neighbour), in
    1/16 px, saturating; ``valid`` the pixels that hold content.
    """

    points: np.ndarray  # (k, 2) float32 (row, col)
    angles: np.ndarray  # (k,) float32, modulo pi (in [0, pi); a mirrored side's in (0, pi])
    distance: np.ndarray  # (n_bins, M, N) uint8
    valid: np.ndarray  # (M, N) bool
    keypoints: Keypoints


class PackedSide(NamedTuple):
    """A :class:`ContourSide` as it is cached and shipped to workers: the distance maps
    compressed (zlib, lossless), the content mask packed to bits, and no inverted
    descriptors (they are a permutation of the descriptors). :meth:`Contour.prepare`
    unpacks it into the very same ``ContourSide``. Measured on one 256 x 256 work image
    (a photograph): 1.8 MB pickled for the image and its mirror as ``ContourSide``,
    0.52 MB packed with both sides; the mirror image's side is no longer stored
    (:func:`mirror_side`), and 40 generated images average 0.24 MB packed."""

    points: np.ndarray  # (k, 2) float32 (row, col)
    angles: np.ndarray  # (k,) float32 in [0, pi)
    distance: bytes  # zlib of the (n_bins, M, N) uint8 maps
    bins_shape: tuple[int, int, int]  # (n_bins, M, N)
    valid: np.ndarray  # np.packbits of the (M, N) bool mask
    keypoints: Keypoints


class ContourFeatures(NamedTuple):
    """The image's contours; with ``coarse_sigma``, the same found at that coarser scale
    (sharing the keypoints); packed, as extracted, cached and shipped
    (:meth:`Contour.prepare` unpacks them, and makes the mirror image's from them)."""

    upright: PackedSide
    coarse: ContourFeatures | None = None


class PreparedContour(NamedTuple):
    """:class:`ContourFeatures` unpacked, what pairs are scored on; ``mirrored`` (with
    ``mirror``) is the upright side reflected left to right (:func:`mirror_side`)."""

    upright: ContourSide
    mirrored: ContourSide | None
    coarse: PreparedContour | None = None


class ContourMatch(NamedTuple):
    """How two images' contours were put on one another (for pair evidence)."""

    similarity: float
    transform: np.ndarray  # 3x3, (col, row, 1) positions in a -> positions in b's side
    aligned: bool  # False: too few verified keypoints, the work images' own alignment kept
    mirrored: bool  # True: b's mirror image matched better
    inliers: int
    deviation_ab: np.ndarray  # per a-point distance (px) to b's contours, NaN off the overlap
    deviation_ba: np.ndarray  # per b-point distance (px) to a's contours, NaN off the overlap
    sigma: float = 0.0  # the scale (Gaussian sigma, px) whose contours matched


#: SIFT descriptors of the same keypoints with the image's light and dark swapped are
#: ``descriptors[:, _INVERTED]``. Inverting an image turns every gradient by 180 degrees;
#: SIFT's keypoint orientation turns with them, so the gradients' angles relative to it
#: do not change, while its 4 x 4 grid of cells is turned half round: the cells come in
#: reverse order, each cell's orientation histogram unchanged.
_INVERTED = np.arange(128).reshape(4, 4, 8)[::-1, ::-1, :].ravel()
#: The descriptors of the image mirrored left to right are ``descriptors[:, _MIRRORED]``
#: (:func:`mirror_side`): the cells reversed along the rows of the keypoint's frame, the
#: orientation bins ``k -> -k (mod 8)``.
_MIRRORED = np.roll(np.arange(128).reshape(4, 4, 8)[::-1, :, ::-1], 1, axis=-1).ravel()


@dataclass(frozen=True)
class Contour(Metric):
    """Do the outlines coincide after alignment? An oriented chamfer similarity in [0, 1].

    This is the tracing-paper test: a cartoon that was pounced or traced
    leaves copies whose contours agree to a few pixels, whatever the palette,
    brushwork, varnish or photograph; a freehand copy keeps the layout but its
    outlines wander.

    Features (once per image): contours of the work image, smoothed by a
    Gaussian of ``sigma`` px (and, with ``coarse_sigma``, again at that
    coarser scale: a second scale), found by Canny's detector on the gradient with
    thresholds at the ``edge_percentile`` (and half of it) of the image's own
    gradient magnitudes, so faint and strong images give contours of similar
    density. Each contour pixel keeps its gradient direction modulo 180
    degrees, which makes the contours polarity-invariant (a copy with light
    and dark swapped has the same ones). For each of ``n_bins`` orientation
    bins, a Euclidean distance transform to the contour pixels of that bin or
    a neighbouring one (Borgefors' chamfer distance, computed exactly). Also
    SIFT keypoints with RootSIFT descriptors, and the descriptors the
    image with light and dark swapped would have; SIFT's contrast threshold is
    lowered (down to 1/16) until ``min_detected`` keypoints are found (default:
    the budget, ``max_keypoints``), so a faint work or one photographed under
    glare still has keypoints to align on. With ``mirror``, the mirror image's
    features are these reflected left to right (:func:`mirror_side`).

    Alignment (once per pair): B is brought onto A by an affine transform
    fitted by RANSAC to mutual ratio-test matches of their keypoints (matched
    as they are, and with B's light and dark swapped; the better fit is kept).
    With fewer than ``min_inliers`` verified matches, or an implausible
    transform, the work images' own alignment (the pipeline's) is kept.

    Raw score: every contour pixel of A is carried into B (position, and
    direction by the inverse transpose of the linear part) and looks up its
    distance ``d`` to B's nearest contour of a compatible orientation, and the
    same from B to A. Only pixels that land on the other image's content count
    (a detail copy is scored on the part it shares). Each direction scores
    ``mean(max(0, 1 - d / t))`` with ``t = tolerance x`` the work image's side
    (a truncated chamfer distance, after Shotton et al.'s oriented chamfer
    matching); the raw score is the mean of the two directions.

    Scales: brushwork, canvas weave or grain that is stronger than the
    drawing buries its outlines under short fragments at a fine scale (blur
    2 px at 256 px); at 4 px the texture averages out and the outlines
    remain, which is why the default is 4 px. With ``coarse_sigma`` the pair
    is scored at two scales (the same keypoint fit) and the better score is
    kept: the outlines coincide at one scale of observation at least.

    Transform: ``similarity = raw``, already in [0, 1], monotone decreasing
    in every residual distance, 1.0 when every contour lies on the other's.
    Exactly 1.0 for identical features; symmetric (the pair is put in a
    canonical order before fitting, and both directions are averaged). With
    ``mirror`` (default: prints reverse the drawing they were made from), the
    better of B and B's mirror image is taken. Fewer than ``min_points``
    contour pixels on the overlap: 0. When neither keypoints nor any shift
    within ``search_shift`` bring a ``refine_above`` share of the outlines
    within the tolerance, the pair is scored where the search left it
    (iterated closest points would only refine an unrelated pair).

    References
    ----------
    H. G. Barrow, J. M. Tenenbaum, R. C. Bolles and H. C. Wolf, "Parametric
    correspondence and chamfer matching: two new techniques for image
    matching", IJCAI 1977, 659-663.
    G. Borgefors, "Hierarchical chamfer matching: a parametric edge matching
    algorithm", IEEE TPAMI 10(6), 849-865, 1988. :doi:`10.1109/34.9107`
    J. Shotton, A. Blake and R. Cipolla, "Multiscale categorical object
    recognition using contour fragments", IEEE TPAMI 30(7), 1270-1281, 2008.
    :doi:`10.1109/TPAMI.2007.70772`
    J. Canny, "A computational approach to edge detection", IEEE TPAMI 8(6),
    679-698, 1986. :doi:`10.1109/TPAMI.1986.4767851`

    Examples
    --------
    >>> import numpy as np
    >>> from skimage import data
    >>> img = data.camera()[::2, ::2].astype(np.float32) / 255
    >>> m = Contour()
    >>> f = m.extract(img, np.ones(img.shape, bool))
    >>> m.compare(f, f)
    1.0
    """

    name: ClassVar[str] = "contour"
    # 5: the mirror image's side made from the upright one; 6: the keypoints in the order of
    # the one detection that finds them (preprocessing.keypoints._adaptive); 7: the matches
    # listed by position, so a score does not depend on the keypoints' order
    version: ClassVar[str] = "7"
    order_slack: ClassVar[float] = 0.03  # measured: +0.02 from blur 1 to 2 px on one base

    # chosen on the accuracy benchmark's development half (docs/accuracy.md): one scale,
    # blur 4 px, against 2 px alone and 2 px + 4 px
    sigma: float = 4.0
    coarse_sigma: float | None = None
    edge_percentile: float = 92.0
    n_bins: int = 8
    tolerance: float = 0.01
    max_points: int = 2500
    min_points: int = 20
    max_keypoints: int = 300
    ratio: float = 0.8
    ransac_px: float = 3.0
    min_inliers: int = 6
    min_length: int = 12
    search_shift: float = 0.06
    refine_above: float = 0.25
    icp_iters: int = 8
    border: int = 3
    mirror: bool = True
    # chosen on the development half (docs/accuracy.md) among 0, 150 and 300: the keypoint
    # budget is filled (SIFT's threshold lowered until max_keypoints, to 1/16 of it), so a
    # faint image has keypoints to align on too
    min_detected: int = 300
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.sigma > 0:
            raise ValueError(f"sigma must be positive, got {self.sigma}")
        if self.coarse_sigma is not None and not self.coarse_sigma > self.sigma:
            raise ValueError(
                f"coarse_sigma must exceed sigma ({self.sigma}) or be None, got {self.coarse_sigma}"
            )
        if not 50.0 <= self.edge_percentile < 100.0:
            raise ValueError(f"edge_percentile must be in [50, 100), got {self.edge_percentile}")
        if not 4 <= self.n_bins <= 36:
            raise ValueError(f"n_bins must be in [4, 36], got {self.n_bins}")
        if not 0 < self.tolerance <= 0.2:
            raise ValueError(f"tolerance must be in (0, 0.2], got {self.tolerance}")
        if self.min_inliers < 3 or not 0 < self.ratio < 1:
            raise ValueError("min_inliers must be >= 3 and ratio in (0, 1)")
        if self.max_points < self.min_points or self.min_points < 1:
            raise ValueError("need max_points >= min_points >= 1")
        if self.min_detected < 0:
            raise ValueError(f"min_detected must be >= 0, got {self.min_detected}")

    # -- features ------------------------------------------------------------------------

    def extract(self, image: np.ndarray, mask: np.ndarray) -> ContourFeatures:
        image = np.asarray(image, np.float32)
        mask = np.asarray(mask, bool)
        detect = {
            "max_keypoints": self.max_keypoints,
            "border": self.border,
            "min_detected": self.min_detected,
        }
        kp = detect_rootsift(image, mask, **detect)
        fine = ContourFeatures(self._side(image, mask, self.sigma, kp))
        if self.coarse_sigma is None:
            return fine
        return fine._replace(coarse=ContourFeatures(self._side(image, mask, self.coarse_sigma, kp)))

    def _side(self, image: np.ndarray, mask: np.ndarray, sigma: float, kp: Keypoints) -> PackedSide:
        size = 2 * self.border + 1
        valid = cv2.erode(mask.astype(np.uint8), np.ones((size, size), np.uint8)).astype(bool)
        edges, gx, gy = find_outlines(
            image, mask, valid, sigma, self.edge_percentile, self.min_length
        )
        rows, cols = np.nonzero(edges)
        angles = np.mod(np.arctan2(gy[rows, cols], gx[rows, cols]), np.pi).astype(np.float32)
        bins = _bin(angles, self.n_bins)
        distance = np.empty((self.n_bins, *image.shape), np.uint8)
        for b in range(self.n_bins):
            near = (bins == b) | (bins == (b + 1) % self.n_bins) | (bins == (b - 1) % self.n_bins)
            free = np.ones(image.shape, np.uint8)
            free[rows[near], cols[near]] = 0
            if near.any():
                dt = cv2.distanceTransform(free, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            else:
                dt = np.full(image.shape, 255.0, np.float32)
            distance[b] = np.minimum(dt * _DIST_STEPS + 0.5, 255.0).astype(np.uint8)
        if len(rows) > self.max_points:  # an even subsample in raster order bounds the cost
            keep = np.linspace(0, len(rows) - 1, self.max_points).round().astype(int)
            rows, cols, angles = rows[keep], cols[keep], angles[keep]
        return PackedSide(
            np.stack([rows, cols], axis=1).astype(np.float32),
            angles,
            zlib.compress(distance.tobytes(), 1),
            (self.n_bins, *image.shape),
            np.packbits(valid),
            kp,
        )

    def prepare(self, features: ContourFeatures | PreparedContour) -> PreparedContour:
        """The features with every side unpacked (:class:`PackedSide` -> ``ContourSide``)
        and, with ``mirror``, the mirror image's side made from the upright one, once per
        image per block; prepared features are returned as they are."""
        if isinstance(features, PreparedContour):
            return features
        coarse = None if features.coarse is None else self.prepare(features.coarse)
        upright = _unpack(features.upright)
        return PreparedContour(upright, mirror_side(upright) if self.mirror else None, coarse)

    # -- pairs ---------------------------------------------------------------------------

    def _fit(self, a: ContourSide, b: ContourSide) -> tuple[np.ndarray | None, int]:
        """The best verified affine transform a -> b (``(col, row)`` positions), and its inliers."""
        best: tuple[np.ndarray | None, int] = (None, 0)
        if min(len(a.keypoints.points), len(b.keypoints.points)) < self.min_inliers:
            return best
        # as they are, and as B with light and dark swapped would give them (a permuted
        # copy made here: prepared features then hold one set of descriptors a side)
        for desc in (b.keypoints.descriptors, b.keypoints.descriptors[:, _INVERTED]):
            other = Keypoints(b.keypoints.points, desc, b.keypoints.shape)
            pairs = mutual_matches(a.keypoints, other, ratio=self.ratio)
            if len(pairs) < max(self.min_inliers, 4):
                continue
            mat, inl = fit_model(
                a.keypoints.points[pairs[:, 0]],
                b.keypoints.points[pairs[:, 1]],
                "affine",
                ransac_px=self.ransac_px,
                seed=self.seed,
                max_iters=2000,
                confidence=0.995,
            )
            count = int(inl.sum())
            good = count >= self.min_inliers and count >= 0.3 * len(pairs)
            if mat is not None and good and count > best[1] and _plausible(mat):
                best = (mat, count)
        return best

    def _carry(
        self, src: ContourSide, mat: np.ndarray, keep: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """src's contour pixels (or the subset ``keep``) carried by ``mat``: cols, rows, bins."""
        pts = src.points if keep is None else src.points[keep]
        ang = src.angles if keep is None else src.angles[keep]
        rows, cols = pts[:, 0].astype(np.float64), pts[:, 1].astype(np.float64)
        x = mat[0, 0] * cols + mat[0, 1] * rows + mat[0, 2]
        y = mat[1, 0] * cols + mat[1, 1] * rows + mat[1, 2]
        w = mat[2, 0] * cols + mat[2, 1] * rows + mat[2, 2]
        # a gradient (normal) direction is carried by the inverse transpose of the linear part
        lin_inv_t = np.linalg.inv(mat[:2, :2]).T
        nx, ny = np.cos(ang), np.sin(ang)
        tx = lin_inv_t[0, 0] * nx + lin_inv_t[0, 1] * ny
        ty = lin_inv_t[1, 0] * nx + lin_inv_t[1, 1] * ny
        return x / w, y / w, _bin(np.mod(np.arctan2(ty, tx), np.pi), self.n_bins)

    @staticmethod
    def _lookup(
        dst: ContourSide,
        x: np.ndarray,
        y: np.ndarray,
        bins: np.ndarray,
        shifts: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Distance (px) to dst's nearest compatible contour; NaN off dst's content.
        With ``shifts`` ``(sx, sy)``, for the points moved by each shift: one row a shift."""
        from ._fused import chamfer_lookup

        zero = np.zeros(1)
        sx, sy = shifts if shifts is not None else (zero, zero)
        out = np.empty((len(sx), len(x)))
        chamfer_lookup(
            np.ascontiguousarray(x, np.float64),
            np.ascontiguousarray(y, np.float64),
            np.ascontiguousarray(bins, np.int64),
            np.ascontiguousarray(sx, np.float64),
            np.ascontiguousarray(sy, np.float64),
            dst.distance,
            dst.valid,
            1.0 / _DIST_STEPS,
            out,
        )
        return out if shifts is not None else out[0]

    def _directed(self, src: ContourSide, dst: ContourSide, mat: np.ndarray) -> np.ndarray:
        """Distance (px) from each of src's contour pixels, carried by ``mat``, to dst's."""
        x, y, bins = self._carry(src, mat)
        return self._lookup(dst, x, y, bins)

    def _subscore(self, d: np.ndarray, t: float) -> np.ndarray:
        """Truncated chamfer score along the last axis, off-content pixels counted as misses."""
        return np.mean(_closeness(np.nan_to_num(d, nan=t), t), axis=-1)

    def _chamfer_fit(
        self, a: ContourSide, b: ContourSide, start: np.ndarray, *, search: bool
    ) -> np.ndarray:
        """Refine ``start`` (a -> b) by chamfer matching: the affine map that brings a's
        contours onto b's nearest compatible ones (Barrow et al. 1977, Borgefors 1988).

        With ``search``, first the best translation within ``search_shift`` x the side
        (a grid of shifts, scored on a subsample); then iterated closest points: each
        of a's pixels moves down the gradient of b's distance map onto b's contour,
        and an affine map is fitted to those pairs by least squares.
        """
        n = len(a.points)
        if n < self.min_points:
            return start
        keep = np.linspace(0, n - 1, min(n, 400)).round().astype(np.int64)
        side = max(a.valid.shape)
        t = self.tolerance * side
        mat = start.copy()
        if search:
            coarse = keep[:: max(1, len(keep) // 250)]
            x, y, bins = self._carry(a, mat, coarse)
            span = self.search_shift * side
            offsets = np.arange(-span, span + 1e-9, max(1.0, span / 4))
            grid_x, grid_y = np.meshgrid(offsets, offsets)
            sx, sy = grid_x.ravel(), grid_y.ravel()
            d = self._lookup(b, x, y, bins, shifts=(sx, sy))
            scores = self._subscore(d, t)
            best = int(np.argmax(scores))
            mat = np.array([[1, 0, sx[best]], [0, 1, sy[best]], [0, 0, 1]]) @ mat
            if scores[best] < self.refine_above:
                return mat  # no shift brings the outlines close: nothing to refine
        src = np.column_stack([a.points[keep, 1], a.points[keep, 0], np.ones(len(keep))])
        n_rows, n_cols = b.valid.shape
        for _ in range(self.icp_iters):
            x, y, bins = self._carry(a, mat, keep)
            d = self._lookup(b, x, y, bins)
            r = np.clip(np.rint(y).astype(np.int64), 1, n_rows - 2)
            c = np.clip(np.rint(x).astype(np.int64), 1, n_cols - 2)
            dist = b.distance
            scale = np.float32(0.5 / _DIST_STEPS)
            gx = (dist[bins, r, c + 1].astype(np.float32) - dist[bins, r, c - 1]) * scale
            gy = (dist[bins, r + 1, c].astype(np.float32) - dist[bins, r - 1, c]) * scale
            norm = np.hypot(gx, gy)
            use = np.isfinite(d) & (d < 2 * t) & (norm > 0.3)
            if use.sum() < max(self.min_points, 12):
                break
            qx = x[use] - d[use] * gx[use] / norm[use]
            qy = y[use] - d[use] * gy[use] / norm[use]
            sol, *_ = np.linalg.lstsq(src[use], np.column_stack([qx, qy]), rcond=None)
            new = np.vstack([sol.T, [0.0, 0.0, 1.0]])
            if not _plausible(new):
                break
            step = np.abs(new - mat).max()
            mat = new
            if step < 1e-3:
                break
        return mat

    def _score(self, dist: np.ndarray, side: int) -> tuple[float, int]:
        d = dist[np.isfinite(dist)]
        if d.size == 0:
            return 0.0, 0
        return float(np.mean(_closeness(d, self.tolerance * side))), int(d.size)

    def _match_sides(
        self, a: ContourSide, b: ContourSide, fit: tuple[np.ndarray | None, int]
    ) -> ContourMatch:
        fitted, inliers = fit
        hypotheses = []
        if fitted is not None:
            hypotheses.append(self._chamfer_fit(a, b, fitted, search=False))
        if inliers < 2 * self.min_inliers:  # no confident fit: also search from where they lie
            hypotheses.append(self._chamfer_fit(a, b, np.eye(3), search=True))
        side = max(a.valid.shape)
        matches = []
        for mat in hypotheses:
            d_ab = self._directed(a, b, mat)
            d_ba = self._directed(b, a, np.linalg.inv(mat))
            s_ab, n_ab = self._score(d_ab, side)
            s_ba, n_ba = self._score(d_ba, side)
            counts = [(s, n) for s, n in ((s_ab, n_ab), (s_ba, n_ba)) if n >= self.min_points]
            sim = float(np.mean([s for s, _ in counts])) if counts else 0.0
            # np.allclose(mat, I, atol=1e-9) without its overhead (a tenth of a ms a pair)
            moved = not bool(np.all(np.abs(mat - _EYE) <= 1e-9 + 1e-5 * _EYE))
            matches.append(
                ContourMatch(float(min(1.0, max(0.0, sim))), mat, moved, False, inliers, d_ab, d_ba)
            )
        return max(matches, key=lambda m: m.similarity)

    def match(
        self, a: ContourFeatures | PreparedContour, b: ContourFeatures | PreparedContour
    ) -> ContourMatch:
        """Align ``b`` onto ``a`` (and its mirror image, with ``mirror``) at each scale;
        the best match. The keypoint fit is made once and shared by the scales."""
        a, b = self.prepare(a), self.prepare(b)
        scales = [(self.sigma, a, b)]
        if self.coarse_sigma is not None and a.coarse is not None and b.coarse is not None:
            scales.append((self.coarse_sigma, a.coarse, b.coarse))
        fit = self._fit(a.upright, b.upright)
        fit_mirrored = (
            self._fit(a.upright, b.mirrored) if self.mirror and b.mirrored is not None else None
        )
        best: ContourMatch | None = None
        for sigma, fa, fb in scales:
            found = self._match_sides(fa.upright, fb.upright, fit)._replace(sigma=sigma)
            if fit_mirrored is not None and fb.mirrored is not None:
                flipped = self._match_sides(fa.upright, fb.mirrored, fit_mirrored)
                if flipped.similarity > found.similarity:
                    found = flipped._replace(mirrored=True, sigma=sigma)
            if best is None or found.similarity > best.similarity:
                best = found
        assert best is not None
        return best

    def compare(
        self, a: ContourFeatures | PreparedContour, b: ContourFeatures | PreparedContour
    ) -> float:
        a, b = self.prepare(a), self.prepare(b)
        if _same(a.upright, b.upright):
            return 1.0
        # canonical order: RANSAC's seeded sampling sees the same input either way round
        if _order_key(b.upright) < _order_key(a.upright):
            a, b = b, a
        return self.match(a, b).similarity

    def evidence(
        self, a: ContourFeatures | PreparedContour, b: ContourFeatures | PreparedContour
    ) -> dict[str, object]:
        """The two contours on A's frame, how far B's lie from A's, and which way B matched.

        Keys: ``contours_a`` (A's contour pixels, ``(col, row)``), ``contours_b``
        (B's, carried onto A), ``deviation`` (for each of B's, its distance in
        work-image pixels to A's nearest compatible contour, NaN off the
        overlap), ``transform`` (3 x 3, A -> B's side as matched), ``mirrored``,
        ``aligned`` (a transform was fitted, not the work images' own kept) and
        ``sigma`` (the scale whose contours matched; they are the ones shown).
        """
        a, b = self.prepare(a), self.prepare(b)
        m = self.match(a, b)
        if m.sigma != self.sigma and a.coarse is not None and b.coarse is not None:
            a, b = a.coarse, b.coarse
        side_b = b.mirrored if m.mirrored and b.mirrored is not None else b.upright
        inv = np.linalg.inv(m.transform)
        pts = np.column_stack(
            [side_b.points[:, 1], side_b.points[:, 0], np.ones(len(side_b.points))]
        )
        on_a = pts @ inv.T
        on_a = on_a[:, :2] / on_a[:, 2:3]
        return {
            "contours_a": a.upright.points[:, ::-1].copy(),
            "contours_b": on_a.astype(np.float32),
            "deviation": m.deviation_ba,
            "transform": m.transform,
            "mirrored": m.mirrored,
            "aligned": m.aligned,
            "sigma": m.sigma,
        }


def find_outlines(
    image: np.ndarray,
    mask: np.ndarray,
    valid: np.ndarray,
    sigma: float,
    edge_percentile: float,
    min_length: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The contour test's outlines of one image: Canny on the gradient of the luminance
    blurred by ``sigma`` px, its high threshold at the ``edge_percentile`` of the gradient
    magnitude inside ``valid``, fragments shorter than ``min_length`` pixels dropped
    (texture leaves short ones). Polarity plays no part: only where the luminance
    changes, not which way. Pixels outside ``mask`` take the content's mean, so the
    border of a padded image makes no outline.

    Returns
    -------
    edges : (M, N) ndarray of bool
    gx, gy : (M, N) ndarray of float32
        The blurred luminance's gradient (the outlines' orientation).
    """
    fill = float(image[mask].mean()) if mask.any() else 0.0
    img = np.where(mask, np.clip(image, 0.0, 1.0), fill).astype(np.float32)
    smooth = cv2.GaussianBlur(img, (0, 0), sigma)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    inside = np.hypot(gx, gy)[valid]
    top = float(inside.max()) if inside.size else 0.0
    edges = np.zeros(image.shape, bool)
    if top > 1e-6:
        scale = 16000.0 / top  # int16 gradients for Canny, full range used
        high = float(np.percentile(inside, edge_percentile)) * scale
        dx = np.round(gx * scale).astype(np.int16)
        dy = np.round(gy * scale).astype(np.int16)
        canny = cv2.Canny(dx, dy, max(high * 0.5, 1.0), max(high, 2.0), L2gradient=True)
        edges = (canny > 0) & valid
        # outlines are long; texture (brushwork, grain, noise) leaves short fragments
        _, comp, stats, _ = cv2.connectedComponentsWithStats(edges.astype(np.uint8), connectivity=8)
        long_enough = stats[:, cv2.CC_STAT_AREA] >= min_length
        long_enough[0] = False
        edges = long_enough[comp]
    return edges, gx, gy


def _closeness(d: np.ndarray, t: float) -> np.ndarray:
    """A contour pixel's share of the score: 1 on the other's outline, 0 at ``t`` px or more."""
    return np.clip(1.0 - d / t, 0.0, 1.0)


def _bin(angles: np.ndarray, n_bins: int) -> np.ndarray:
    return np.minimum((angles / np.pi * n_bins).astype(np.int64), n_bins - 1)


def _plausible(mat: np.ndarray) -> bool:
    """An affine map a copy could have undergone: scale 1/4..4, aspect within 2, no flip."""
    lin = mat[:2, :2]
    sv = np.linalg.svd(lin, compute_uv=False)
    return bool(np.linalg.det(lin) > 0 and 0.25 <= sv[1] and sv[0] <= 4.0 and sv[0] / sv[1] <= 2.0)


def _unpack(side: PackedSide) -> ContourSide:
    n_bins, rows, cols = side.bins_shape
    # a writable copy: the compiled lookup is specialised for writable arrays
    distance = np.frombuffer(zlib.decompress(side.distance), np.uint8).reshape(n_bins, rows, cols)
    valid = np.unpackbits(side.valid, count=rows * cols).reshape(rows, cols).astype(bool)
    return ContourSide(side.points, side.angles, distance.copy(), valid, side.keypoints)


def mirror_side(side: ContourSide) -> ContourSide:
    """The contours of the image mirrored left to right, made from the upright ones.

    Every part is reflected, not found again: contour pixels ``(r, c) -> (r, N - 1 - c)``
    with their direction ``a -> pi - a``; the distance maps reversed along the columns
    and in bin order (a direction in bin ``b`` lands in bin ``n_bins - 1 - b``, and each
    map holds a bin and its two neighbours); the content mask reversed; the keypoints
    at ``x -> N - 1/2 - x`` (OpenCV's SIFT places a keypoint on column ``c`` at
    ``x = c + 1/4``, measured) with each descriptor's 4 x 4 grid of cells reversed
    along the rows of its frame and its orientation bins ``k -> -k (mod 8)``: a
    reflection turns the keypoint's orientation ``t -> 180 - t`` and each gradient's
    angle relative to it to its negative. The contours found on the mirror image are
    these, pixel for pixel (measured). On generated images, detecting SIFT again on
    the mirror image finds 75-78 % of these keypoints (78-89 % on drawings) with the same
    descriptors; the others differ because a reflection does not preserve the subsampling of
    SIFT's coarser octaves, nor therefore the budget's cut. Made this way, the mirror
    image costs no detection and nothing in the cache, and its distance maps and mask
    are views of the side's own (reversed), so a prepared image holds one set of maps.
    """
    n_cols = side.valid.shape[1]
    points = side.points.copy()
    points[:, 1] = (n_cols - 1) - points[:, 1]
    kp = side.keypoints
    kp_points = kp.points.copy()
    kp_points[:, 0] = (n_cols - 0.5) - kp_points[:, 0]
    return ContourSide(
        points,
        np.float32(np.pi) - side.angles,
        side.distance[::-1, :, ::-1],  # views: the mirror side holds no maps of its own
        side.valid[:, ::-1],
        Keypoints(kp_points, kp.descriptors[:, _MIRRORED], kp.shape),
    )


def _same(a: ContourSide, b: ContourSide) -> bool:
    return a is b or (
        a.points.shape == b.points.shape
        and np.array_equal(a.points, b.points)
        and np.array_equal(a.angles, b.angles)
        and a.distance.shape == b.distance.shape
        and np.array_equal(a.distance, b.distance)
    )


def _order_key(side: ContourSide) -> tuple[int, bytes]:
    return len(side.points), side.points.tobytes() + side.angles.tobytes()
