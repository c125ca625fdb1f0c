"""Shortlists for large collections: which pairs deserve the expensive metrics.

Comparing every pair costs N^2/2 metric evaluations. For large N a cheap
global descriptor per image finds each image's ``k`` nearest neighbours
(cosine similarity, exact search in blocks), and only the union of those pairs
is compared by the metrics. Copies of one work are each other's nearest
neighbours under the descriptor long before they are under anything else,
so a family of fewer than ``k + 1`` images keeps all of its pairs.

The descriptor: the work image (invalid canvas filled with the mean of the
valid pixels) as a pyramid of HOG vectors (9 unsigned orientations, so a copy
whose fills flipped from dark to light keeps its descriptor; 2 x 2 blocks) at
64 x 64 px in 8 px cells, 32 x 32 px in 8 px cells and 16 x 16 px in 4 px
cells, beside a 32 x 32 map of its gradient magnitude (zero mean); each part
L2-normalised, then the whole. The coarse levels are what a copy rotated by a
few degrees or rescaled by a few per cent still shares with its model. The
same descriptor of the image mirrored left to right is searched too (the
better of the two similarities): a print reverses the drawing it was made
from, and the contour test matches it mirrored.

Chosen on development sets (a generated set of 3,000 images, seed 1, and the
development half of ``bench/accuracy.py``'s three draws pooled), reported on
held-out ones (docs/scale.md): recall of same-family pairs at ``k = 20``
99.3 % on the 10,000 generated images of ``bench/scale.py`` (the 64 px HOG
and gradient map alone: 97.0 %) and 91.7-94.7 % on the held-out halves of
the benchmark, where partial copies (details of 30-60 % of the area) are the
pairs a global descriptor misses.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import cv2
import numpy as np
from skimage.feature import hog

from preprocessing.parallel import ordered_map
from preprocessing.work import WorkImage, on_pixels

__all__ = ["Shortlist", "descriptor_pair", "global_descriptor", "shortlist", "shortlist_recall"]

#: Rows of the query block in the exact neighbour search (bounds memory at block x N).
_SEARCH_BLOCK = 1024


def _fill(gray: np.ndarray, mask: np.ndarray) -> np.ndarray:
    valid = np.asarray(mask, bool)
    fill = float(gray[valid].mean()) if valid.any() else 0.0
    return np.where(valid, gray, fill).astype(np.float32)


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


#: HOG levels of the descriptor's pyramid: (side of the resized image, cell side) in px.
_HOG_LEVELS = ((64, 8), (32, 8), (16, 4))


def _hog(filled: np.ndarray, side: int, cell: int) -> np.ndarray:
    small = cv2.resize(filled, (side, side), interpolation=cv2.INTER_AREA)
    h = hog(small, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2))
    return _unit(np.asarray(h, np.float64))


def global_descriptor(gray: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """One L2-normalised float32 vector per image: the HOG pyramid (1764 + 324 + 324
    values) and the gradient map (1024)."""
    filled = _fill(gray, mask)
    parts = [_hog(filled, side, cell) for side, cell in _HOG_LEVELS]
    mid = cv2.resize(filled, (128, 128), interpolation=cv2.INTER_AREA)
    gx = cv2.Sobel(mid, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(mid, cv2.CV_32F, 0, 1)
    grad = cv2.resize(np.hypot(gx, gy), (32, 32), interpolation=cv2.INTER_AREA).ravel()
    parts.append(_unit(grad - grad.mean()))
    return _unit(np.concatenate(parts)).astype(np.float32)


def descriptor_pair(gray: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(2, d): :func:`global_descriptor` of the image and of its mirror image."""
    mirrored = global_descriptor(
        np.ascontiguousarray(gray[:, ::-1]), np.ascontiguousarray(np.asarray(mask)[:, ::-1])
    )
    return np.stack([global_descriptor(gray, mask), mirrored])


@dataclass(frozen=True)
class Shortlist:
    """The pairs to compare.

    Attributes
    ----------
    k : int
        Neighbours per image.
    pairs : (m, 2) ndarray of int
        Unordered pairs ``i < j``, sorted, each once: ``j`` among the ``k``
        nearest of ``i`` or ``i`` among those of ``j``.
    n : int
        Number of images.
    """

    k: int
    pairs: np.ndarray
    n: int

    def mask(self) -> np.ndarray:
        """Symmetric (n, n) bool matrix of the shortlisted pairs (diagonal True)."""
        out = np.eye(self.n, dtype=bool)
        out[self.pairs[:, 0], self.pairs[:, 1]] = True
        out[self.pairs[:, 1], self.pairs[:, 0]] = True
        return out

    @property
    def n_pairs(self) -> int:
        return len(self.pairs)

    def fraction(self) -> float:
        """Shortlisted pairs over all pairs."""
        total = self.n * (self.n - 1) // 2
        return len(self.pairs) / total if total else 1.0


def shortlist(
    images: Sequence[WorkImage],
    k: int,
    *,
    executor: Executor | None = None,
    descriptors: np.ndarray | None = None,
) -> Shortlist:
    """Each image's ``k`` nearest neighbours under the global descriptor, as pairs.

    An image's neighbours are the others whose descriptor, or whose mirror
    image's descriptor, is most similar to its own (the better of the two).

    Parameters
    ----------
    images : sequence of WorkImage
    k : int
        Neighbours per image (at most ``n - 1``).
    executor : Executor, optional
        Where descriptors are computed.
    descriptors : (n, 2, d) or (n, d) ndarray, optional
        Precomputed :func:`descriptor_pair` rows, or :func:`global_descriptor`
        rows alone (then mirror images are not searched).

    Examples
    --------
    >>> import numpy as np
    >>> from preprocessing.work import WorkImage
    >>> rng = np.random.default_rng(0)
    >>> ims = [WorkImage(str(i), rng.random((64, 64), dtype=np.float32),
    ...        np.ones((64, 64), bool), np.eye(3)) for i in range(5)]
    >>> s = shortlist(ims, 1)
    >>> bool((s.pairs[:, 0] < s.pairs[:, 1]).all()), s.n
    (True, 5)
    """
    n = len(images)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if descriptors is None:
        vectors = ordered_map(
            functools.partial(on_pixels, descriptor_pair),
            [(im,) for im in images],
            executor=executor,
        )
        descriptors = np.asarray(vectors, np.float32).reshape(n, 2, -1)
    descriptors = np.asarray(descriptors, np.float32)
    upright = np.ascontiguousarray(descriptors[:, 0] if descriptors.ndim == 3 else descriptors)
    mirrored = np.ascontiguousarray(descriptors[:, 1]) if descriptors.ndim == 3 else None
    kk = min(k, n - 1)
    if kk < 1:
        return Shortlist(k, np.zeros((0, 2), int), n)
    found = []
    for start in range(0, n, _SEARCH_BLOCK):
        block = upright[start : start + _SEARCH_BLOCK]
        sims = block @ upright.T  # cosine similarity of unit vectors
        if mirrored is not None:
            np.maximum(sims, block @ mirrored.T, out=sims)
        rows = np.arange(len(block))
        sims[rows, start + rows] = -np.inf  # not its own neighbour
        nearest = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        i = np.repeat(start + rows, kk)
        found.append(np.stack([i, nearest.ravel()], axis=1))
    pairs = np.concatenate(found)
    pairs = np.sort(pairs, axis=1)
    pairs = np.unique(pairs, axis=0)
    return Shortlist(k, pairs.astype(int), n)


def shortlist_recall(selected: Shortlist, labels: Sequence[object]) -> float:
    """Share of same-label pairs the shortlist kept (1.0 when there are none)."""
    lab = np.asarray(labels, dtype=object)
    same = lab[:, None] == lab[None, :]
    iu = np.triu_indices(len(lab), k=1)
    wanted = int(same[iu].sum())
    if wanted == 0:
        return 1.0
    kept = int(same[selected.pairs[:, 0], selected.pairs[:, 1]].sum())
    return kept / wanted
