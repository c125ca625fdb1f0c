"""Configuration of the clustering stage."""

from __future__ import annotations

from dataclasses import dataclass

from preprocessing.errors import ConfigError

__all__ = ["ClusteringConfig", "SELECTION_CRITERIA", "LINKAGES"]

#: Criterion that may choose k -> whether larger is better. Davies-Bouldin is reported
#: in every k table but not offered here yet: with singleton clusters (zero scatter)
#: it drifts to k = n - 1 on clean block matrices (see tests/clustering).
SELECTION_CRITERIA: dict[str, bool] = {
    "silhouette": True,
    "calinski-harabasz": True,
}

#: Linkages for agglomerative clustering on a precomputed distance.
LINKAGES = ("average", "complete", "single")


@dataclass(frozen=True)
class ClusteringConfig:
    """How images are grouped.

    Parameters
    ----------
    method : str
        A name from ``clustering.METHODS``.
    n_clusters : int or "auto"
        A fixed number of clusters, or ``"auto"`` to choose it from
        ``k_min..k_max`` by ``selection``.
    selection : str
        Criterion that chooses k: ``silhouette`` (on distances, higher is
        better) or ``calinski-harabasz`` (higher is better, computed on the
        classical MDS embedding of the distance matrix).
    k_min, k_max : int
        The range searched by ``"auto"``, clipped to ``n - 1``.
    linkage : str
        Linkage for ``agglomerative``: one of ``LINKAGES``.
    """

    method: str = "spectral"
    n_clusters: int | str = "auto"
    selection: str = "silhouette"
    k_min: int = 2
    k_max: int = 25
    linkage: str = "average"

    def __post_init__(self) -> None:
        from .methods import METHODS  # local: methods imports nothing from config

        if self.method not in METHODS:
            raise ConfigError(
                f"unknown clustering method {self.method!r}; valid: {', '.join(sorted(METHODS))}"
            )
        if self.n_clusters != "auto" and (
            isinstance(self.n_clusters, bool)
            or not isinstance(self.n_clusters, int)
            or self.n_clusters < 1
        ):
            raise ConfigError(
                f"clustering.n_clusters must be 'auto' or an integer >= 1, got {self.n_clusters!r}"
            )
        if self.selection not in SELECTION_CRITERIA:
            raise ConfigError(
                f"unknown selection criterion {self.selection!r}; "
                f"valid: {', '.join(SELECTION_CRITERIA)}"
            )
        for name in ("k_min", "k_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ConfigError(f"clustering.{name} must be an integer >= 2, got {value!r}")
        if self.k_max < self.k_min:
            raise ConfigError(
                f"clustering.k_max ({self.k_max}) must be >= clustering.k_min ({self.k_min})"
            )
        if self.linkage not in LINKAGES:
            raise ConfigError(f"unknown linkage {self.linkage!r}; valid: {', '.join(LINKAGES)}")
