"""Hierarchical clustering of a sparse graph of distances, cut at a height.

In shortlist mode only each image's nearest neighbours are compared; every
other pair is judged dissimilar, at distance 1. Average, complete and single
linkage of that matrix, cut at a height ``t < 1``, never merge two clusters
that share no compared pair (their distance is 1), so the cut can be found
from the compared pairs alone, without the dense matrix: for each pair of
clusters that share a compared pair keep the sum (average), the largest
(complete) or the smallest (single) of their compared distances and how many
there are; the pairs not compared count at 1. The merges are those of SciPy's
``linkage`` on the dense matrix with the missing pairs at 1, so the cut is
``fcluster(linkage(...), t, criterion="distance")`` (tested against it).

References
----------
R. R. Sokal and C. D. Michener, "A statistical method for evaluating
systematic relationships", University of Kansas Science Bulletin 38,
1409-1438, 1958 (average linkage, UPGMA).
"""

from __future__ import annotations

import heapq

import numpy as np
import scipy.sparse as sp

__all__ = ["SPARSE_LINKAGES", "cut_sparse_linkage"]

#: Linkages whose cut below 1 the compared pairs decide.
SPARSE_LINKAGES = ("average", "complete", "single")


def _height(linkage: str, link: list[float], full: int) -> float:
    """Distance between two clusters from their compared pairs' ``[value, count]``,
    ``full`` pairs in all (the rest at 1)."""
    value, count = link
    if linkage == "average":
        return (value + (full - count)) / full
    if linkage == "complete":
        return value if count == full else 1.0
    return value  # single: the closest compared pair


def _combine(linkage: str, a: list[float] | None, b: list[float] | None) -> list[float]:
    """The ``[value, count]`` of a merged cluster's link to a third from its parts'."""
    if a is None or b is None:
        kept = a if b is None else b
        assert kept is not None
        return [kept[0], kept[1]]
    if linkage == "average":
        return [a[0] + b[0], a[1] + b[1]]
    if linkage == "complete":
        return [max(a[0], b[0]), a[1] + b[1]]
    return [min(a[0], b[0]), a[1] + b[1]]


def cut_sparse_linkage(distance: sp.spmatrix, t: float, linkage: str = "average") -> np.ndarray:
    """Flat clusters of the hierarchy of ``distance`` cut at height ``t``.

    Parameters
    ----------
    distance : (n, n) sparse matrix
        Distances in [0, 1] of the compared pairs (symmetric; the diagonal is
        ignored); a pair not stored is at distance 1.
    t : float
        Clusters keep merging while their linkage distance is at most ``t``
        (SciPy's ``fcluster(..., criterion="distance")``). At ``t >= 1`` every
        image is in one cluster.
    linkage : {"average", "complete", "single"}

    Returns
    -------
    (n,) ndarray of int
        Labels 0..k-1, in order of each cluster's first image.
    """
    if linkage not in SPARSE_LINKAGES:
        raise ValueError(f"linkage must be one of {', '.join(SPARSE_LINKAGES)}, got {linkage!r}")
    n = distance.shape[0]
    if t >= 1.0:
        return np.zeros(n, int)
    coo = sp.triu(sp.coo_matrix(distance), k=1)
    size = [1] * n
    links: list[dict[int, list[float]]] = [{} for _ in range(n)]
    for i, j, d in zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True):
        links[i][j] = links[j][i] = [float(d), 1]
    version = [0] * n
    heap = [
        (_height(linkage, link, 1), i, j, 0, 0)
        for i in range(n)
        for j, link in links[i].items()
        if i < j and _height(linkage, link, 1) <= t
    ]
    heapq.heapify(heap)
    parent = list(range(n))
    while heap:
        _, a, b, va, vb = heapq.heappop(heap)
        if version[a] != va or version[b] != vb or parent[a] != a or parent[b] != b:
            continue  # a cluster that changed since this entry was pushed
        parent[b] = a
        version[a] += 1
        merged: dict[int, list[float]] = {}
        for x in links[a].keys() | links[b].keys():
            if x in (a, b):
                continue
            link = _combine(linkage, links[a].get(x), links[b].get(x))
            merged[x] = links[x][a] = link
            links[x].pop(b, None)
        size[a] += size[b]
        links[a], links[b] = merged, {}
        for x, link in merged.items():
            height = _height(linkage, link, size[a] * size[x])
            if height <= t:
                lo, hi = (a, x) if a < x else (x, a)
                heapq.heappush(heap, (height, lo, hi, version[lo], version[hi]))
    return _labels(parent)


def _labels(parent: list[int]) -> np.ndarray:
    """Each image's root, numbered by first appearance."""
    root = np.array(parent)
    while True:
        up = root[root]
        if np.array_equal(up, root):
            break
        root = up
    _, first, inverse = np.unique(root, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse]
