"""Alignment of the work images: pystackreg's motion models or SIFT + RANSAC.

Transform convention (pystackreg's, and OpenCV's ``WARP_INVERSE_MAP``): a
work image's ``transform`` maps a position ``(col, row, 1)`` in the aligned
canvas to the position in the unaligned work image that it was sampled from.
It is 3 x 3, except for pystackreg's bilinear model (4 x 4, pystackreg's own
layout).

Borders that a transform uncovers are filled with zeros and marked invalid in
the image's mask, so pixel metrics compare only pixels valid in both images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from pystackreg import StackReg

from .errors import AlignmentError
from .keypoints import Keypoints, detect_rootsift, fit_model, mutual_matches
from .work import AlignedSet, WorkImage

__all__ = [
    "MOTION_MODELS",
    "ALIGN_METHODS",
    "FEATURE_MODELS",
    "AlignQuality",
    "align",
    "check_alignment_options",
    "ncc",
]

#: Option name -> pystackreg model.
MOTION_MODELS: dict[str, int] = {
    "translation": StackReg.TRANSLATION,
    "rigid": StackReg.RIGID_BODY,
    "scaled-rotation": StackReg.SCALED_ROTATION,
    "affine": StackReg.AFFINE,
    "bilinear": StackReg.BILINEAR,
}
ALIGN_METHODS = ("none", *MOTION_MODELS, "features")
FEATURE_MODELS = ("similarity", "affine", "homography")
STACKREG_REFERENCES = ("auto", "mean", "first", "previous")
FEATURE_REFERENCES = ("auto", "first")

_VALID = 0.99  # a pixel is valid when at least this much of it came from valid pixels
_MASK_ERODE = 4  # keep keypoints away from the padding's artificial edge
_RATIO = 0.8  # Lowe's ratio test
_RANSAC_PX = 3.0
_MAX_CANDIDATES = 16  # images tried as the feature path's reference

MapFn = Callable[[Callable[..., Any], Sequence[tuple[Any, ...]]], list[Any]]


@dataclass(frozen=True)
class AlignQuality:
    """How well one image aligned.

    ``ncc_before`` / ``ncc_after``: normalised cross-correlation of the image
    with the mean of the *other* images, before and after alignment, over
    pixels valid in both. ``inliers``: RANSAC inliers to the reference
    (feature path). ``aligned`` is False when the image was left unaligned
    (too few matches) or its correlation fell.
    """

    id: str
    ncc_before: float
    ncc_after: float
    inliers: int | None = None
    aligned: bool = True
    note: str = ""


def check_alignment_options(
    method: str, reference: str, ids: Sequence[str] | None = None, feature_model: str = "affine"
) -> None:
    """Refuse unknown or impossible combinations up front, with a clear message.

    Raises
    ------
    AlignmentError
    """
    if method not in ALIGN_METHODS:
        raise AlignmentError(f"unknown alignment {method!r}; valid: {', '.join(ALIGN_METHODS)}")
    if feature_model not in FEATURE_MODELS:
        raise AlignmentError(
            f"unknown feature model {feature_model!r}; valid: {', '.join(FEATURE_MODELS)}"
        )
    if method == "none":
        return
    allowed = FEATURE_REFERENCES if method == "features" else STACKREG_REFERENCES
    if reference in allowed:
        if method == "bilinear" and reference == "previous":
            raise AlignmentError(
                "the bilinear model cannot align to the previous image (pystackreg does not "
                "support it); use reference mean, first or an image id"
            )
        return
    if ids is not None and reference not in ids:
        raise AlignmentError(
            f"reference {reference!r} is neither one of {', '.join(allowed)} nor an image id "
            f"of this set"
        )
    if ids is None and reference in (STACKREG_REFERENCES + FEATURE_REFERENCES):
        raise AlignmentError(
            f"reference {reference!r} does not go with alignment {method!r}; "
            f"valid: {', '.join(allowed)} or an image id"
        )


def ncc(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Pearson correlation of ``a`` and ``b`` over ``mask`` (0.0 when undefined)."""
    if mask.sum() < 2:
        return 0.0
    return _ncc_of(a[mask].astype(np.float64), b[mask].astype(np.float64))


def _ncc_of(x: np.ndarray, y: np.ndarray) -> float:
    """:func:`ncc` of two float64 vectors it may change (centred in place)."""
    x -= x.mean()
    y -= y.mean()
    den = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / den) if den > 0 else 0.0


def _masked_sums(images: Sequence[WorkImage]) -> tuple[np.ndarray, np.ndarray]:
    total = np.zeros(images[0].gray.shape, np.float64)
    count = np.zeros(images[0].gray.shape, np.float64)
    for im in images:
        total += np.where(im.mask, im.gray, 0.0)
        count += im.mask
    return total, count


def _loo_ncc(
    images: Sequence[WorkImage], sums: tuple[np.ndarray, np.ndarray] | None = None
) -> list[float]:
    """NCC of each image with the mean of the others (leave one out); ``sums`` are
    :func:`_masked_sums` of ``images`` when the caller has them."""
    total, count = sums if sums is not None else _masked_sums(images)

    shared = count > 1

    def one(im: WorkImage) -> float:
        # the mean of the others, only where the NCC reads it: the image's own pixels
        # that another image covers too (the same floats as forming the whole mean)
        valid = im.mask & shared
        if valid.all():  # the same values in the same order as the selection below
            x, t, c = im.gray.ravel().astype(np.float64), total.ravel(), count.ravel()
        elif valid.sum() < 2:
            return 0.0
        else:
            x, t, c = im.gray[valid].astype(np.float64), total[valid], count[valid]
        return _ncc_of(x.copy(), (t - x) / (c - 1.0))

    if len(images) < 64:
        return [one(im) for im in images]
    # NumPy releases the GIL in these passes: each half on a thread (1,000 images:
    # 0.85 -> 0.55 s), in order
    half = len(images) // 2
    with ThreadPoolExecutor(2) as pool:
        parts = pool.map(lambda part: [one(im) for im in part], [images[:half], images[half:]])
        return [value for part in parts for value in part]


def _mean(
    images: Sequence[WorkImage], sums: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    total, count = sums if sums is not None else _masked_sums(images)
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


# ----------------------------------------------------------------------------- pystackreg
def _sr_register(model: int, ref: np.ndarray, im: WorkImage) -> WorkImage:
    """Register ``im`` to ``ref`` and return it aligned (one task for a worker)."""
    sr = StackReg(model)
    tmat = sr.register(ref.astype(np.float64), im.gray.astype(np.float64))
    return _sr_apply(model, im, tmat)


def _sr_apply(model: int, im: WorkImage, tmat: np.ndarray) -> WorkImage:
    sr = StackReg(model)
    gray = np.clip(sr.transform(im.gray.astype(np.float64), tmat), 0.0, 1.0)
    mask = sr.transform(im.mask.astype(np.float64), tmat) >= _VALID
    return WorkImage(im.id, gray.astype(np.float32), mask, np.asarray(tmat))


def map_points(
    tmat: np.ndarray, cols: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where canvas points ``(cols, rows)`` are sampled from under ``tmat``.

    3 x 3: homogeneous ``(col, row, 1)``; 4 x 4: pystackreg's bilinear layout
    acting on ``(col, row, col * row, 1)``.
    """
    if tmat.shape == (4, 4):
        vec = np.stack([cols, rows, cols * rows, np.ones_like(cols)])
        out = tmat @ vec
        return out[0], out[1]
    vec = np.stack([cols, rows, np.ones_like(cols)])
    out = tmat @ vec
    return out[0] / out[2], out[1] / out[2]


def _displacement(a: np.ndarray, b: np.ndarray, size: int) -> float:
    """Largest change, in pixels, of where a canvas point is sampled from (9 x 9 grid)."""
    grid = np.linspace(0, size - 1, 9)
    cols, rows = (g.ravel() for g in np.meshgrid(grid, grid))
    ca, ra = map_points(a, cols, rows)
    cb, rb = map_points(b, cols, rows)
    return float(np.hypot(ca - cb, ra - rb).max())


def _align_stackreg(
    images: Sequence[WorkImage],
    model: int,
    reference: str,
    *,
    rounds: int,
    tolerance: float,
    map_fn: MapFn,
) -> tuple[list[WorkImage], int, list[str]]:
    ids = [im.id for im in images]
    size = images[0].gray.shape[0]
    notes: list[str] = []
    if reference == "previous":
        stack = np.stack([im.gray.astype(np.float64) for im in images])
        tmats = StackReg(model).register_stack(stack, reference="previous")
        return [_sr_apply(model, im, t) for im, t in zip(images, tmats, strict=True)], 1, notes
    if reference != "mean":
        idx = 0 if reference == "first" else ids.index(reference)
        ref = images[idx].gray
        aligned = map_fn(_sr_register, [(model, ref, im) for im in images])
        aligned[idx] = images[idx].with_transform(np.eye(aligned[idx].transform.shape[0]))
        return aligned, 1, notes
    # Iterated mean: register to the mean of the current aligned images until
    # the transforms stop moving (pystackreg's own "mean" uses the unaligned mean once).
    ref = _mean(images)
    previous: list[np.ndarray] | None = None
    aligned = list(images)
    done = 0
    while done < rounds:
        done += 1
        # the previous round's images let go before this round's arrive: a third copy
        # of the set was held at the peak (1,000 images at 256 px: 0.33 GB)
        aligned = []
        aligned = map_fn(_sr_register, [(model, ref, im) for im in images])
        tmats = [im.transform for im in aligned]
        ref = _mean(aligned)
        if previous is not None:
            moved = max(_displacement(a, b, size) for a, b in zip(tmats, previous, strict=True))
            if moved < tolerance:
                break
        previous = tmats
    else:
        if rounds > 1:
            notes.append(f"mean alignment stopped after {rounds} rounds before converging")
    return aligned, done, notes


# ----------------------------------------------------------------------------- features
def _sift(gray: np.ndarray, mask: np.ndarray) -> Keypoints:
    return detect_rootsift(gray, mask, max_keypoints=2000, border=_MASK_ERODE)


def _estimate(
    ref: Keypoints, mov: Keypoints, model: str, seed: int
) -> tuple[np.ndarray | None, int]:
    """Transform mapping reference positions to moving positions, and its inlier count."""
    pairs = mutual_matches(ref, mov, ratio=_RATIO)
    mat, inliers = fit_model(
        ref.points[pairs[:, 0]],
        mov.points[pairs[:, 1]],
        model,
        ransac_px=_RANSAC_PX,
        seed=seed,
        max_iters=5000,
        confidence=0.999,
        refine_iters=20,
    )
    return mat, int(inliers.sum()) if mat is not None else 0


def _warp(im: WorkImage, mat: np.ndarray) -> WorkImage:
    size = im.gray.shape[::-1]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    gray = cv2.warpPerspective(im.gray, mat, size, flags=flags, borderValue=0.0)
    mask = (
        cv2.warpPerspective(im.mask.astype(np.float32), mat, size, flags=flags, borderValue=0.0)
        >= _VALID
    )
    return WorkImage(im.id, np.clip(gray, 0, 1).astype(np.float32), mask, mat)


def _align_features(
    images: Sequence[WorkImage],
    model: str,
    reference: str,
    *,
    min_inliers: int,
    random_state: int,
    map_fn: MapFn,
) -> tuple[list[WorkImage], int, list[int | None], list[str]]:
    n = len(images)
    feats = map_fn(_sift, [(im.gray, im.mask) for im in images])
    notes: list[str] = []
    if reference == "auto":
        step = max(1, n // _MAX_CANDIDATES) if n > _MAX_CANDIDATES else 1
        candidates = list(range(0, n, step))[:_MAX_CANDIDATES]
        jobs = [
            (feats[c], feats[j], model, random_state)
            for c in candidates
            for j in range(n)
            if j != c
        ]
        counts = map_fn(_estimate, jobs)
        per = np.zeros(len(candidates))
        it = iter(counts)
        for k, c in enumerate(candidates):
            per[k] = sum(next(it)[1] for j in range(n) if j != c)
        idx = candidates[int(np.argmax(per))]
        notes.append(f"feature reference: {images[idx].id} (most RANSAC inliers to the others)")
    else:
        idx = 0 if reference == "first" else [im.id for im in images].index(reference)
    results = map_fn(_estimate, [(feats[idx], f, model, random_state) for f in feats])
    aligned: list[WorkImage] = []
    inliers: list[int | None] = []
    for i, (im, (mat, count)) in enumerate(zip(images, results, strict=True)):
        if i == idx:
            aligned.append(im.with_transform(np.eye(3)))
            inliers.append(None)
        elif mat is None or count < min_inliers:
            notes.append(
                f"{im.id}: too few feature matches ({count} inliers < {min_inliers}); "
                "left unaligned"
            )
            aligned.append(im.with_transform(np.eye(3)))
            inliers.append(count)
        else:
            aligned.append(_warp(im, mat))
            inliers.append(count)
    return aligned, idx, inliers, notes


# ----------------------------------------------------------------------------- entry point
def _serial_map(fn: Callable[..., Any], items: Sequence[tuple[Any, ...]]) -> list[Any]:
    return [fn(*item) for item in items]


def _quality(
    aligned: Sequence[WorkImage],
    method: str,
    ncc_before: list[float],
    inliers: list[int | None],
    notes: list[str],
) -> list[AlignQuality]:
    """Per image: correlation with the others before and after, and whether it aligned."""
    # unaligned images correlate after as before (not computed twice: 0.7 s at 1,000)
    ncc_after = ncc_before if method == "none" else _loo_ncc(aligned)
    unaligned_ids = {n.split(":")[0] for n in notes if "left unaligned" in n}
    quality = []
    for i, im in enumerate(aligned):
        fell = method != "none" and ncc_after[i] < ncc_before[i] - 0.02
        ok = im.id not in unaligned_ids and not fell
        note = (
            "left unaligned"
            if im.id in unaligned_ids
            else "correlation with the others fell"
            if fell
            else ""
        )
        quality.append(AlignQuality(im.id, ncc_before[i], ncc_after[i], inliers[i], ok, note))
    return quality


def align(
    images: Sequence[WorkImage],
    *,
    method: str = "translation",
    reference: str = "mean",
    feature_model: str = "affine",
    rounds: int = 5,
    tolerance: float = 0.1,
    min_inliers: int = 8,
    random_state: int = 0,
    map_fn: MapFn | None = None,
) -> AlignedSet:
    """Align work images to a common reference.

    Parameters
    ----------
    images : sequence of WorkImage
        Unaligned work images, all of one square shape.
    method : str
        ``none``, a pystackreg motion model (``translation``, ``rigid``,
        ``scaled-rotation``, ``affine``, ``bilinear``) or ``features``
        (SIFT + RANSAC).
    reference : str
        pystackreg models: ``mean`` (iterated; also what ``auto`` means),
        ``first``, ``previous`` or an image id. Features: ``auto`` (the image
        with the most inliers to the others), ``first`` or an image id.
    feature_model : str
        ``similarity``, ``affine`` or ``homography`` (feature path only).
    rounds, tolerance : int, float
        Iterated mean reference: at most ``rounds`` rounds, stopping when no
        canvas pixel's source moves by ``tolerance`` pixels or more.
    min_inliers : int
        Feature path: fewer RANSAC inliers leave an image unaligned, with a
        warning.
    random_state : int
        Seed of RANSAC.
    map_fn : callable, optional
        ``map_fn(fn, items)`` -> ``[fn(*item) for item in items]``, e.g. over
        a process pool.

    Returns
    -------
    AlignedSet
        Aligned images with their transforms and masks, the mean image before
        and after, per-image quality and warnings.

    Raises
    ------
    AlignmentError
        Unknown method or reference, or an impossible combination (bilinear
        with the previous image).

    References
    ----------
    P. Thevenaz, U. E. Ruttimann and M. Unser, "A pyramid approach to subpixel
    registration based on intensity", IEEE Trans. Image Processing 7(1),
    27-41, 1998. :doi:`10.1109/83.650848` (pystackreg / TurboReg).
    D. G. Lowe, "Distinctive image features from scale-invariant keypoints",
    IJCV 60, 91-110, 2004. :doi:`10.1023/B:VISI.0000029664.99615.94`
    M. A. Fischler and R. C. Bolles, "Random sample consensus", Comm. ACM
    24(6), 381-395, 1981. :doi:`10.1145/358669.358692`
    R. Arandjelovic and A. Zisserman, "Three things everyone should know to
    improve object retrieval" (RootSIFT), CVPR 2012.
    :doi:`10.1109/CVPR.2012.6248018`
    """
    # long: the numpydoc docstring makes this function over 80 lines; its code is not
    ids = [im.id for im in images]
    check_alignment_options(method, reference, ids, feature_model)
    if method in MOTION_MODELS and reference == "auto":
        reference = "mean"
    if not images:
        return AlignedSet((), 0, method)
    size = images[0].gray.shape[0]
    mapper = map_fn or _serial_map
    sums = _masked_sums(images)  # one pass for the mean and the correlations before
    before_mean = _mean(images, sums).astype(np.float32)
    ncc_before = _loo_ncc(images, sums)
    inliers: list[int | None] = [None] * len(images)
    notes: list[str] = []
    rounds_done = 0
    ref_name = reference
    unmoved = method == "none" or len(images) == 1
    if unmoved:
        aligned = [im.with_transform(np.eye(3)) for im in images]
    elif method == "features":
        aligned, idx, inliers, notes = _align_features(
            images,
            feature_model,
            reference,
            min_inliers=min_inliers,
            random_state=random_state,
            map_fn=mapper,
        )
        ref_name = ids[idx]
    else:
        aligned, rounds_done, notes = _align_stackreg(
            images,
            MOTION_MODELS[method],
            reference,
            rounds=rounds,
            tolerance=tolerance,
            map_fn=mapper,
        )
    quality = _quality(aligned, method, ncc_before, inliers, notes)
    return AlignedSet(
        images=tuple(aligned),
        size=size,
        method=method,
        reference=ref_name,
        mean_before=before_mean,
        mean_after=before_mean if unmoved else _mean(aligned).astype(np.float32),
        quality=tuple(quality),
        rounds=rounds_done,
        warnings=tuple(notes),
    )
