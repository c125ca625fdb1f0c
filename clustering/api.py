"""One entry point: cluster a similarity matrix according to a config."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from preprocessing.errors import ClusteringError
from preprocessing.matrix import check_similarity_matrix, similarity_to_distance

from .config import SELECTION_CRITERIA, ClusteringConfig
from .methods import METHODS
from .scores import classical_mds, medoids, per_image_silhouette, score_labels

__all__ = ["ClusteringResult", "cluster"]

#: Off-diagonal distances all below this mean the images are indistinguishable.
_IDENTICAL_ATOL = 1e-9


@dataclass(frozen=True, eq=False)
class ClusteringResult:
    """What clustering found.

    Attributes
    ----------
    labels : (n,) ndarray of int
        0-based cluster labels, ``-1`` for noise.
    k : int
        Number of clusters (noise not counted).
    method, consumes, criterion : str
        The method, the input it consumed (``affinity`` or ``distance``) and
        the criterion that chose k (``"fixed"`` when k was given).
    selection : list of dict
        One row per k evaluated: ``k`` and every score.
    exemplars : dict of int to int
        Cluster label -> index of its exemplar image (the medoid).
    silhouette : (n,) ndarray of float
        Per-image silhouette on the distance matrix (NaN where undefined).
    scores : dict
        The scores of the chosen labelling.
    warnings : list of str
        Library warnings and notes for the user.
    """

    labels: np.ndarray
    k: int
    method: str
    consumes: str
    criterion: str
    selection: list[dict[str, float]]
    exemplars: dict[int, int]
    silhouette: np.ndarray
    scores: dict[str, float]
    warnings: list[str] = field(default_factory=list)


def _fit(
    method_name: str,
    matrix: np.ndarray,
    k: int,
    *,
    random_state: int,
    linkage: str,
    notes: list[str],
) -> np.ndarray:
    method = METHODS[method_name]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels = method.fit_predict(matrix, k, random_state=random_state, linkage=linkage)
    for w in caught:
        msg = f"{method_name} (k={k}): {w.category.__name__}: {w.message}"
        if msg not in notes:
            notes.append(msg)
    return _relabel(np.asarray(labels, dtype=int))


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..k-1 in order of first appearance; keep -1 as noise."""
    mapping: dict[int, int] = {}
    out = np.empty_like(labels)
    for i, lab in enumerate(labels.tolist()):
        if lab < 0:
            out[i] = -1
            continue
        out[i] = mapping.setdefault(lab, len(mapping))
    return out


def _result(labels, distance, coords, *, method, criterion, selection, notes) -> ClusteringResult:
    k = len(set(labels.tolist()) - {-1})
    return ClusteringResult(
        labels=labels,
        k=k,
        method=method,
        consumes=METHODS[method].consumes,
        criterion=criterion,
        selection=selection,
        exemplars=medoids(distance, labels),
        silhouette=per_image_silhouette(distance, labels),
        scores=score_labels(distance, coords, labels),
        warnings=notes,
    )


def cluster(
    similarity: np.ndarray, config: ClusteringConfig | None = None, *, random_state: int = 0
) -> ClusteringResult:
    """Cluster images from their similarity matrix.

    Parameters
    ----------
    similarity : (n, n) ndarray
        Similarities in [0, 1], symmetric, 1 on the diagonal (checked). The
        method receives it as affinity or as ``1 - similarity`` distance,
        whichever it declares in ``METHODS``.
    config : ClusteringConfig, optional
    random_state : int
        Seed for every random step of the method.

    Returns
    -------
    ClusteringResult

    Raises
    ------
    ClusteringError
        A fixed k larger than the number of images, or an empty input.
    """
    config = config or ClusteringConfig()
    sim = check_similarity_matrix(similarity)
    n = sim.shape[0]
    if n == 0:
        raise ClusteringError("cannot cluster an empty set of images")
    distance = similarity_to_distance(sim)
    coords = classical_mds(distance)
    method = METHODS[config.method]
    matrix = sim if method.consumes == "affinity" else distance
    notes: list[str] = []
    common = {"method": config.method, "notes": notes}

    def fit(k: int) -> np.ndarray:
        return _fit(
            config.method, matrix, k, random_state=random_state, linkage=config.linkage, notes=notes
        )

    if config.n_clusters != "auto":
        k = int(config.n_clusters)
        if k > n:
            raise ClusteringError(f"n_clusters={k} is more than the {n} images given")
        labels = np.zeros(n, dtype=int) if k == 1 else (np.arange(n) if k == n else fit(k))
        row = {"k": k, **score_labels(distance, coords, labels)}
        return _result(labels, distance, coords, criterion="fixed", selection=[row], **common)

    off = distance[np.triu_indices(n, k=1)]
    if n < 3 or float(off.max(initial=0.0)) < _IDENTICAL_ATOL:
        why = (
            f"k cannot be chosen automatically for {n} image(s)"
            if n < 3
            else "all images are identical under this metric"
        )
        notes.append(f"{why}; all images put in one cluster")
        labels = np.zeros(n, dtype=int)
        return _result(labels, distance, coords, criterion=config.selection, selection=[], **common)

    k_lo, k_hi = min(config.k_min, n - 1), min(config.k_max, n - 1)
    selection: list[dict[str, float]] = []
    candidates: dict[int, np.ndarray] = {}
    for k in range(k_lo, k_hi + 1):
        labels = fit(k)
        candidates[k] = labels
        selection.append(
            {
                "k": k,
                "k_found": len(set(labels.tolist()) - {-1}),
                **score_labels(distance, coords, labels),
            }
        )
    larger_better = SELECTION_CRITERIA[config.selection]
    valid = [r for r in selection if np.isfinite(r[config.selection])]
    if not valid:
        notes.append(f"{config.selection} undefined for every k; all images put in one cluster")
        labels = np.zeros(n, dtype=int)
    else:
        sign = 1.0 if larger_better else -1.0
        # Ties go to the smaller k (rows are in increasing k, max keeps the first).
        best = max(valid, key=lambda r: sign * r[config.selection])
        labels = candidates[int(best["k"])]
    return _result(
        labels, distance, coords, criterion=config.selection, selection=selection, **common
    )
