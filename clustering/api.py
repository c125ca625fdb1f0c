"""One entry point: cluster a similarity matrix (or features) according to a config."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from preprocessing.errors import ClusteringError
from preprocessing.matrix import check_similarity_matrix, similarity_to_distance

from .config import SELECTION_CRITERIA, ClusteringConfig
from .methods import METHODS, ClusteringMethod, Fit, Input, check_input
from .scores import (
    classical_mds,
    derivative_scores,
    euclidean_distances,
    medoids,
    per_image_silhouette,
    score_labels,
)

__all__ = ["ClusteringResult", "cluster", "MDS_ENERGY"]

#: Off-diagonal distances all below this mean the images are indistinguishable.
_IDENTICAL_ATOL = 1e-9

#: ``features = "mds"`` keeps every positive dimension of the classical MDS embedding:
#: truncated to its leading dimensions, tight groups collapse to near-identical points
#: and Calinski-Harabasz then rewards splitting them (measured on block matrices).
MDS_ENERGY = None


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
        The method, the input it consumed (``affinity``, ``distance`` or
        ``features``) and what chose k (a criterion, ``"fixed"``,
        ``"threshold"`` or ``"method"`` for methods that find their own).
    selection : list of dict
        One row per k evaluated: ``k``, ``k_found`` and every score.
    exemplars : dict of int to int
        Cluster label -> index of its exemplar image (affinity propagation's
        exemplar, else the medoid).
    silhouette : (n,) ndarray of float
        Per-image silhouette (NaN where undefined).
    scores : dict
        The scores of the chosen labelling.
    warnings : list of str
        Library warnings and notes for the user.
    features : str or None
        The features clustered (feature methods), else None.
    coords : (n, d) ndarray
        The points Davies-Bouldin and Calinski-Harabasz were computed on
        (the features, or a classical MDS embedding of the distances).
    distance : (n, n) ndarray
        The distances the silhouette was computed on.
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
    features: str | None = None
    coords: np.ndarray | None = None
    distance: np.ndarray | None = None


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..k-1 in order of first appearance; keep -1 as noise."""
    mapping: dict[int, int] = {}
    out = np.empty_like(labels)
    for i, lab in enumerate(labels.tolist()):
        out[i] = -1 if lab < 0 else mapping.setdefault(lab, len(mapping))
    return out


def _fit(
    estimator: ClusteringMethod, data: np.ndarray, kind: Input, k: int | None, notes: list[str]
) -> Fit:
    """One fit, its library warnings kept as notes, its labels renumbered 0..k-1."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = estimator.fit(data, kind, k)
    _note_warnings(caught, f"{estimator.name}{'' if k is None else f' (k={k})'}", notes)
    return _relabelled(fit)


_THREAD = threading.local()


@contextmanager
def _warnings_by_thread() -> Iterator[None]:
    """While open, a warning raised on any thread goes to that thread's own list
    (:func:`_fit_caught`), not to the screen. ``warnings.catch_warnings`` swaps
    module-wide state, so it cannot be opened on each of several threads at once;
    this one is opened once, around them all."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")

        def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001, ANN202
            caught = getattr(_THREAD, "caught", None)
            if caught is not None:
                caught.append(warnings.WarningMessage(message, category, filename, lineno))

        warnings.showwarning = show
        yield


def _fit_caught(
    estimator: ClusteringMethod, data: np.ndarray, kind: Input, k: int
) -> tuple[Fit, list[warnings.WarningMessage]]:
    """One fit inside :func:`_warnings_by_thread`, and the warnings it raised."""
    _THREAD.caught = []
    try:
        fit = estimator.fit(data, kind, k)
    finally:
        caught, _THREAD.caught = _THREAD.caught, None
    return _relabelled(fit), caught


def _note_warnings(caught: list[warnings.WarningMessage], who: str, notes: list[str]) -> None:
    for w in caught:
        msg = f"{who}: {w.category.__name__}: {w.message}"
        if msg not in notes:
            notes.append(msg)


def _relabelled(fit: Fit) -> Fit:
    labels = np.asarray(fit.labels, dtype=int)
    relabelled = _relabel(labels)
    mapping = {int(a): int(b) for a, b in zip(labels.tolist(), relabelled.tolist(), strict=True)}
    exemplars = {mapping[lab]: idx for lab, idx in fit.exemplars.items() if lab in mapping}
    return Fit(relabelled, exemplars)


@dataclass(frozen=True)
class _Inputs:
    """What one clustering consumes and is scored on."""

    kind: Input
    data: np.ndarray
    distance: np.ndarray
    coords: np.ndarray
    source: str | None


def _inputs(sim: np.ndarray, config: ClusteringConfig, features: np.ndarray | None) -> _Inputs:
    """The method's input (affinity, distance or features) and what scores read."""
    method = METHODS[config.method]
    matrix_distance = similarity_to_distance(sim)
    source = config.feature_source()
    if source is None:
        kind: Input = method.matrix_input() or "features"
        data = sim if kind == "affinity" else matrix_distance
        return _Inputs(kind, data, matrix_distance, classical_mds(matrix_distance), None)
    n = len(sim)
    if features is None:
        if source != "mds":
            raise ClusteringError(f"features {source!r} were asked for but not given")
        features = classical_mds(matrix_distance, energy=MDS_ENERGY)
    features = np.asarray(features, dtype=np.float64)
    if features.shape[0] != n or features.ndim != 2 or not np.isfinite(features).all():
        raise ClusteringError(
            f"features must be a finite ({n}, d) array, got shape {features.shape}"
        )
    return _Inputs("features", features, euclidean_distances(features), features, source)


def cluster(
    similarity: np.ndarray,
    config: ClusteringConfig | None = None,
    *,
    random_state: int = 0,
    features: np.ndarray | None = None,
    n_jobs: int = 1,
) -> ClusteringResult:
    """Cluster images from their similarity matrix, or from features.

    Parameters
    ----------
    similarity : (n, n) ndarray
        Similarities in [0, 1], symmetric, 1 on the diagonal (checked). Matrix
        methods receive it as affinity or as ``1 - similarity`` distance,
        whichever their class declares in ``consumes``.
    config : ClusteringConfig, optional
    random_state : int
        Seed for every random step of the method.
    features : (n, d) ndarray, optional
        Per-image vectors for feature methods; when the config asks for
        features and none are given, the classical MDS coordinates of the
        distance matrix are used (the ``mds`` features).
    n_jobs : int
        Threads for the search over k (each k fitted and scored on its own; the
        result is the same on any number).

    Returns
    -------
    ClusteringResult

    Raises
    ------
    ClusteringError
        A fixed k larger than the number of images, an input the method does
        not consume, or an empty input.
    """
    config = config or ClusteringConfig()
    sim = check_similarity_matrix(similarity)
    n = sim.shape[0]
    if n == 0:
        raise ClusteringError("cannot cluster an empty set of images")
    inputs = _inputs(sim, config, features)
    estimator = METHODS[config.method](config, random_state=random_state)
    check_input(type(estimator), inputs.kind)
    run = _Run(config, estimator, inputs, notes=[], n_jobs=max(1, int(n_jobs)))
    one = Fit(np.zeros(n, dtype=int))
    off = inputs.distance[np.triu_indices(n, k=1)]
    if n < 3 or float(off.max(initial=0.0)) < _IDENTICAL_ATOL:
        why = (
            f"k cannot be chosen for {n} image(s)"
            if n < 3
            else "all images are identical under this metric"
        )
        if config.n_clusters == "auto" and config.threshold is None:
            run.notes.append(f"{why}; all images put in one cluster")
            return run.result(one, config.selection, [])
    if config.n_clusters != "auto":
        k = int(config.n_clusters)
        if k > n:
            raise ClusteringError(f"n_clusters={k} is more than the {n} images given")
        fit = one if k == 1 else (Fit(np.arange(n)) if k == n else run.fit(k))
        return run.result(fit, "fixed", [run.row(k, fit.labels)])
    if config.threshold is not None:
        fit = run.fit(None)
        return run.result(fit, "threshold", [run.row(len(set(fit.labels.tolist())), fit.labels)])
    if estimator.chooses_k:
        fit = run.fit(None)
        if not (fit.labels >= 0).any():
            run.notes.append(f"{config.method} marked every image as noise")
        k_found = len(set(fit.labels.tolist()) - {-1})
        return run.result(fit, "method", [run.row(k_found, fit.labels)])
    return run.choose_k(one)


@dataclass
class _Run:
    """One clustering: the estimator, its inputs, and the notes gathered on the way."""

    config: ClusteringConfig
    estimator: ClusteringMethod
    inputs: _Inputs
    notes: list[str]
    n_jobs: int = 1
    _t: np.ndarray | None = field(default=None, repr=False)

    def fit(self, k: int | None) -> Fit:
        return _fit(self.estimator, self.inputs.data, self.inputs.kind, k, self.notes)

    def row(self, k: int, labels: np.ndarray) -> dict[str, float]:
        return {
            "k": k,
            "k_found": len(set(labels.tolist()) - {-1}),
            **score_labels(
                self.inputs.distance, self.inputs.coords, labels, transposed=self._transposed
            ),
        }

    @property
    def _transposed(self) -> np.ndarray:
        """The distance matrix's transpose in C order, made once for every k scored."""
        if self._t is None:
            self._t = np.ascontiguousarray(np.asarray(self.inputs.distance, np.float64).T)
        return self._t

    def result(
        self, fit: Fit, criterion: str, selection: list[dict[str, float]]
    ) -> ClusteringResult:
        labels, distance = fit.labels, self.inputs.distance
        exemplars = dict(medoids(distance, labels))
        exemplars.update(fit.exemplars)
        return ClusteringResult(
            labels=labels,
            k=len(set(labels.tolist()) - {-1}),
            method=self.config.method,
            consumes=self.inputs.kind,
            criterion=criterion,
            selection=selection,
            exemplars=exemplars,
            silhouette=per_image_silhouette(distance, labels),
            scores=score_labels(distance, self.inputs.coords, labels),
            warnings=self.notes,
            features=self.inputs.source,
            coords=self.inputs.coords,
            distance=distance,
        )

    def search(self, ks: list[int]) -> tuple[dict[int, Fit], list[dict[str, float]]]:
        """Every k's fit and scores, on ``n_jobs`` threads.

        Each k is fitted and scored on its own, deterministically, so threads give
        the same labels and scores in the same order as one loop. The first k is
        fitted alone: it builds what every k reads (spectral's embedding, the merge
        tree). BLAS runs on one thread: each fit and score is a string of small
        LAPACK and BLAS calls, where OpenBLAS's own threads cost more than they
        give. Measured on 1,000 images, k = 2..250 on this 2-core machine:
        spectral's search 13.8 s with OpenBLAS's two threads, 3.6 s with one, 2.2 s
        with one each on two of these threads; agglomerative's 2.0 s and 1.2 s.
        """
        est, data, kind = self.estimator, self.inputs.data, self.inputs.kind

        def one(k: int) -> tuple[Fit, list[warnings.WarningMessage], dict[str, float]]:
            fit, caught = _fit_caught(est, data, kind, k)
            return fit, caught, self.row(k, fit.labels)

        with threadpool_limits(1), _warnings_by_thread():
            done = [one(ks[0])]
            if self.n_jobs > 1 and len(ks) > 2:
                with ThreadPoolExecutor(min(self.n_jobs, len(ks) - 1)) as pool:
                    done += list(pool.map(one, ks[1:]))
            else:
                done += [one(k) for k in ks[1:]]
        for k, (_, caught, _) in zip(ks, done, strict=True):  # notes in k order
            _note_warnings(caught, f"{est.name} (k={k})", self.notes)
        fits = {k: fit for k, (fit, _, _) in zip(ks, done, strict=True)}
        return fits, [row for _, _, row in done]

    def choose_k(self, one: Fit) -> ClusteringResult:
        """Fit every k of the range and keep the best under the criterion."""
        config, n = self.config, len(self.inputs.distance)
        ks = list(range(min(config.k_min, n - 1), config.k_upper(n) + 1))
        fits, selection = self.search(ks)
        tree = self.estimator.merge_heights(self.inputs.data, self.inputs.kind)
        deriv = derivative_scores(tree, ks) if tree is not None else dict.fromkeys(ks, float("nan"))
        for r in selection:
            r["derivative"] = deriv[int(r["k"])]
        criterion = config.selection
        eligible = [r for r in selection if np.isfinite(r[criterion])]
        if criterion == "davies-bouldin":
            # Singleton clusters have zero scatter, so Davies-Bouldin falls towards
            # k = n - 1 on any data: only labellings averaging two images a cluster compete.
            eligible = [r for r in eligible if r["k"] <= n / 2]
        if not eligible:
            self.notes.append(
                f"{criterion} is undefined for every k; all images put in one cluster"
            )
            return self.result(one, criterion, selection)
        sign = 1.0 if SELECTION_CRITERIA[criterion] else -1.0
        best = max(eligible, key=lambda r: sign * r[criterion])  # ties: the smaller k (first)
        return self.result(fits[int(best["k"])], criterion, selection)
