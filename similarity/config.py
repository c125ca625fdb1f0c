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
    """

    metrics: tuple[str, ...] = ("ssim",)
    metric_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    block_size: int = 32

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
        if (
            isinstance(self.block_size, bool)
            or not isinstance(self.block_size, int)
            or self.block_size < 1
        ):
            raise ConfigError(
                f"similarity.block_size must be a positive integer, got {self.block_size!r}"
            )

    def metric(self, name: str):  # noqa: ANN201 - returns a Metric
        """The configured metric object for ``name``."""
        return get_metric(name, **dict(self.metric_params.get(name, {})))
