"""Configuration of the clustering stage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from preprocessing.errors import ConfigError

from .methods import FEATURE_ONLY_LINKAGES, K_CRITERIA, LINKAGES, METHODS

if TYPE_CHECKING:
    from .methods import ClusteringMethod

__all__ = ["ClusteringConfig", "SELECTION_CRITERIA", "LINKAGES"]

#: Criterion that chooses k -> whether larger is better.
SELECTION_CRITERIA: dict[str, bool] = {
    "silhouette": True,
    "davies-bouldin": False,
    "calinski-harabasz": True,
    "derivative": True,
}


def _number(name: str, value: object, *, lo: float, hi: float | None = None) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value < lo
        or (hi is not None and value > hi)
    ):
        span = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ConfigError(f"clustering.{name} must be a number {span}, got {value!r}")


@dataclass(frozen=True)
class ClusteringConfig:
    """How images are grouped.

    Parameters
    ----------
    method : str
        ``spectral`` and ``affinity`` (propagation) cluster the similarity
        matrix (affinity); ``agglomerative``, ``dbscan`` and ``hdbscan``
        the distance ``1 - similarity``, or features; ``kmeans`` features.
    n_clusters : int or "auto"
        A fixed number of clusters, or ``"auto"`` to choose it from
        ``k_min..k_max`` by ``selection`` (methods that find their own number,
        affinity propagation, DBSCAN, HDBSCAN, take ``"auto"`` only).
    selection : str
        ``silhouette`` (on distances, higher is better), ``davies-bouldin``
        (lower is better), ``calinski-harabasz`` (higher is better), or
        ``derivative`` (the elbow of agglomerative merge heights).
    k_min, k_max : int, or "auto" for k_max
        The range searched by ``"auto"``, clipped to ``n - 1``. ``k_max =
        "auto"`` (default): ``max(25, n // 4)`` (:meth:`k_upper`), so a large
        collection can hold as many families as it has (a fixed 25 capped
        1,000 images of 200 families at 25 clusters: ARI 0.03; with the
        quarter, 193 clusters, ARI 0.94).
    linkage : str
        Agglomerative linkage, one of ``LINKAGES``; ward, centroid and median
        need features.
    threshold : float or None
        Agglomerative only, instead of a k: cut the dendrogram where the
        similarity falls below this value (distance ``1 - threshold``).
    features : str or None
        Per-image vectors for feature methods: ``mds`` (classical MDS of the
        distance matrix), ``pca`` (of the aligned work images' pixels) or a
        metric with vector features (``hog``, ``phash``, ``ahash``,
        ``blockhash``, ``mhhash``, ``embedding``). ``None``: cluster the
        matrix, or ``mds`` for k-means.
    preference, damping : float or None, float
        Affinity propagation; the preference defaults to the median similarity.
    eps, min_samples : float or None, int
        DBSCAN; ``eps`` defaults to the median distance to the
        ``min_samples``-th neighbour.
    min_cluster_size : int
        HDBSCAN.
    neighbors : int or None
        Spectral clustering: the graph keeps each image's ``neighbors`` most
        similar images (a pair is an edge when either image is among the
        other's; the k-nearest-neighbour graph of von Luxburg 2007, section
        2.2); ``None`` (or ``"all"``): every pair is an edge. In a large collection every
        image has many faint links to unrelated works, and their sum can
        outweigh its few strong links to its own family; the neighbour graph
        drops them. Default 20, chosen on the accuracy benchmark's
        development half over three draws (worst recipe: 20 neighbours and
        every pair 0.959, 10 0.955, 5 0.952; docs/accuracy.md). In shortlist
        mode the graph is the shortlist's. Other methods use every pair.
        Other matrices than the default's do better with other graphs: a
        rank-fused one with 5 (docs/clustering.md).

    References
    ----------
    U. von Luxburg, "A tutorial on spectral clustering", Statistics and
    Computing 17(4), 395-416, 2007. :doi:`10.1007/s11222-007-9033-z`
    """

    method: str = "spectral"  # chosen on the accuracy benchmark: docs/accuracy.md
    n_clusters: int | str = "auto"
    selection: str = "silhouette"
    k_min: int = 2
    k_max: int | str = "auto"
    linkage: str = "average"
    threshold: float | None = None
    features: str | None = None
    preference: float | None = None
    damping: float = 0.5
    eps: float | None = None
    min_samples: int = 2
    min_cluster_size: int = 2
    # chosen on the accuracy benchmark's development half, three draws (docs/accuracy.md)
    neighbors: int | None = 20  # "all" is read as None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(
                f"unknown clustering method {self.method!r}; valid: {', '.join(METHODS)}"
            )
        method = METHODS[self.method]
        self._check_k(method)
        if self.linkage not in LINKAGES:
            raise ConfigError(f"unknown linkage {self.linkage!r}; valid: {', '.join(LINKAGES)}")
        if self.features is not None and (not isinstance(self.features, str) or not self.features):
            raise ConfigError(f"clustering.features must be a name, got {self.features!r}")
        uses_features = self.features is not None or method.matrix_input() is None
        if self.features is not None and "features" not in method.consumes:
            raise ConfigError(
                f"{self.method} clusters the similarity matrix, not features: "
                "leave clustering.features unset"
            )
        if method.linkages and self.linkage in FEATURE_ONLY_LINKAGES and not uses_features:
            raise ConfigError(
                f"{self.linkage} linkage needs Euclidean features: set clustering.features "
                "(e.g. mds) or use average, complete, single or weighted linkage"
            )
        if self.threshold is not None:
            _number("threshold", self.threshold, lo=0.0, hi=1.0)
            if not method.cuts_threshold:
                cutters = [m for m, c in METHODS.items() if c.cuts_threshold]
                raise ConfigError(
                    "clustering.threshold cuts a dendrogram: use clustering.method "
                    + " or ".join(cutters)
                )
            if self.n_clusters != "auto":
                raise ConfigError(
                    "give either clustering.n_clusters or clustering.threshold, not both"
                )
            if uses_features:
                raise ConfigError(
                    "clustering.threshold applies to the similarity matrix: "
                    "leave clustering.features unset"
                )
        if self.preference is not None:
            _number("preference", self.preference, lo=-1e6)
        _number("damping", self.damping, lo=0.5, hi=0.99)
        if self.eps is not None:
            _number("eps", self.eps, lo=1e-12)
        if self.neighbors == "all":  # what a configuration file or the CLI can write
            object.__setattr__(self, "neighbors", None)
        if self.neighbors is not None and (
            isinstance(self.neighbors, bool)
            or not isinstance(self.neighbors, int)
            or self.neighbors < 1
        ):
            raise ConfigError(
                'clustering.neighbors must be an integer >= 1 or "all" (every pair), '
                f"got {self.neighbors!r}"
            )
        for name in ("min_samples", "min_cluster_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"clustering.{name} must be an integer >= 1, got {value!r}")

    def _check_k(self, method: type[ClusteringMethod]) -> None:
        """n_clusters, the criterion choosing k and its range, against what the method takes."""
        if self.n_clusters != "auto" and (
            isinstance(self.n_clusters, bool)
            or not isinstance(self.n_clusters, int)
            or self.n_clusters < 1
        ):
            raise ConfigError(
                f"clustering.n_clusters must be 'auto' or an integer >= 1, got {self.n_clusters!r}"
            )
        if self.n_clusters != "auto" and method.chooses_k:
            raise ConfigError(
                f"{self.method} finds its own number of clusters: use clustering.n_clusters = "
                "'auto' (tune it with preference/damping, eps/min_samples or min_cluster_size)"
            )
        if self.selection not in SELECTION_CRITERIA:
            raise ConfigError(
                f"unknown selection criterion {self.selection!r}; "
                f"valid: {', '.join(SELECTION_CRITERIA)}"
            )
        if self.selection not in method.criteria and (
            not method.chooses_k or self.selection not in K_CRITERIA
        ):
            takers = [m for m, c in METHODS.items() if self.selection in c.criteria]
            raise ConfigError(
                f"clustering.selection {self.selection!r} does not choose k for {self.method}: "
                f"use it with clustering.method {' or '.join(takers)}"
            )
        for name in ("k_min", "k_max"):
            value = getattr(self, name)
            if name == "k_max" and value == "auto":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ConfigError(
                    f"clustering.{name} must be an integer >= 2"
                    + (' or "auto"' if name == "k_max" else "")
                    + f", got {value!r}"
                )
        if self.k_max != "auto" and int(self.k_max) < self.k_min:
            raise ConfigError(
                f"clustering.k_max ({self.k_max}) must be >= clustering.k_min ({self.k_min})"
            )

    def k_upper(self, n_images: int) -> int:
        """The largest k the automatic choice tries for ``n_images`` images: ``k_max``, or
        with ``"auto"`` at least 25 and up to a quarter of the images; at most ``n - 1``."""
        top = max(25, n_images // 4) if self.k_max == "auto" else int(self.k_max)
        return max(1, min(top, n_images - 1))

    def feature_source(self) -> str | None:
        """The features the method will consume (``mds`` for k-means by default), or None."""
        if self.features is not None:
            return self.features
        return "mds" if METHODS[self.method].matrix_input() is None else None
