"""Configuration of the similarity stage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from preprocessing.errors import ConfigError

from .registry import METRICS, get_metric

__all__ = ["SimilarityConfig"]


@dataclass(frozen=True)
class SimilarityConfig:
    """Which metrics to compute and how the pairwise engine runs.

    Parameters
    ----------
    metrics : tuple of str
        Names from ``similarity.METRICS``; one matrix is computed per name.
    metric_params : mapping of str to mapping
        Per-metric parameter overrides, e.g. ``{"ssim": {"sigma": 2.0}}``.
    block_size : int
        Images per block side; a block of pairs is ``block_size**2`` pairs at
        most, and a worker holds the features of two blocks at a time.
    fuse : tuple of float or None
        Weights, one per metric, to fuse the metrics' matrices into one
        ("fused"), which is then the matrix clustered; ``None``: no fusion,
        the first metric's matrix is clustered.
    calibration : str
        How matrices are put on one scale before fusion: ``rank`` or ``minmax``.
    cache : bool
        Reuse features and pair similarities from the on-disk cache.
    cache_dir : str or None
        The cache folder; ``$ATELIER_CACHE_DIR`` or ``~/.cache/atelier`` when unset.
    cache_size_gb : float
        Size beyond which the oldest cache entries are evicted.
    """

    metrics: tuple[str, ...] = ("ssim",)
    metric_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    block_size: int = 32
    fuse: tuple[float, ...] | None = None
    calibration: str = "rank"
    cache: bool = True
    cache_dir: str | None = None
    cache_size_gb: float = 4.0

    def __post_init__(self) -> None:
        if isinstance(self.metrics, str):
            object.__setattr__(self, "metrics", (self.metrics,))
        object.__setattr__(self, "metrics", tuple(self.metrics))
        if not self.metrics:
            raise ConfigError("similarity.metrics must name at least one metric")
        if len(set(self.metrics)) != len(self.metrics):
            raise ConfigError(f"similarity.metrics has repeated names: {list(self.metrics)}")
        for name in self.metrics:
            get_metric(name)  # raises with the list of valid names
        for name, params in dict(self.metric_params).items():
            if name not in METRICS:
                raise ConfigError(
                    f"similarity.metric_params names unknown metric {name!r}; "
                    f"valid metrics: {', '.join(sorted(METRICS))}"
                )
            get_metric(name, **dict(params))
        for name in self.metrics:
            self.metric(name).check_ready()
        if (
            isinstance(self.block_size, bool)
            or not isinstance(self.block_size, int)
            or self.block_size < 1
        ):
            raise ConfigError(
                f"similarity.block_size must be a positive integer, got {self.block_size!r}"
            )
        if self.fuse is not None:
            weights = tuple(self.fuse)
            object.__setattr__(self, "fuse", weights)
            bad = any(
                isinstance(w, bool) or not isinstance(w, int | float) or not w >= 0 for w in weights
            )
            if len(weights) != len(self.metrics) or bad or not sum(weights) > 0:
                raise ConfigError(
                    f"similarity.fuse needs {len(self.metrics)} non-negative weights (one per "
                    f"metric: {', '.join(self.metrics)}), not all zero; got {list(weights)}"
                )
        if self.calibration not in ("rank", "minmax"):
            raise ConfigError(
                f"similarity.calibration must be 'rank' or 'minmax', got {self.calibration!r}"
            )
        if not isinstance(self.cache, bool):
            raise ConfigError(f"similarity.cache must be true or false, got {self.cache!r}")
        size = self.cache_size_gb
        if isinstance(size, bool) or not isinstance(size, int | float) or not size > 0:
            raise ConfigError(f"similarity.cache_size_gb must be a positive number, got {size!r}")

    def metric(self, name: str):  # noqa: ANN201 - returns a Metric
        """The configured metric object for ``name``."""
        return get_metric(name, **dict(self.metric_params.get(name, {})))
