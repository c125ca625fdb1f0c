"""Configuration of the similarity stage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from preprocessing.errors import ConfigError

from .pairmodel import DEFAULT_PAIR_MODEL, PairModel
from .registry import METRICS, get_metric

__all__ = ["SimilarityConfig", "DEFAULT_METRICS", "DEFAULT_METRIC_PARAMS", "DEFAULT_FUSE"]

# The default, chosen by measurement (bench/choose_default.py, docs/clustering.md): SIFT
# fused (equal weights, rank calibration) with CW-SSIM on all three scales of its
# pyramid, clustered by HDBSCAN, had the best mean adjusted Rand index over the
# sample artworks and two generated labelled sets.
DEFAULT_METRICS: tuple[str, ...] = ("sift", "cw-ssim")
DEFAULT_METRIC_PARAMS: dict[str, dict[str, Any]] = {"cw-ssim": {"first_scale": 0, "height": 3}}
DEFAULT_FUSE = "equal"


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
    fuse : tuple of float, "equal" or "none"
        How the metrics' matrices are fused into one ("fused"), which is
        then the matrix clustered: weights, one per metric; ``"equal"``
        (default) equal weights when there are two or more metrics; ``"none"``
        no fusion, the first metric's matrix is clustered.
    calibration : str
        How matrices are put on one scale before fusion: ``rank`` or ``minmax``.
    cache : bool
        Reuse features and pair similarities from the on-disk cache.
    cache_dir : str or None
        The cache folder; ``$ATELIER_CACHE_DIR`` or ``~/.cache/atelier`` when unset.
    cache_size_gb : float
        Size beyond which the oldest cache entries are evicted.
    shortlist : str
        ``auto`` (default): compare every pair below ``shortlist_from`` images,
        only the shortlist from there on; ``on`` or ``off`` to force it.
    shortlist_k : int
        Nearest neighbours per image under the cheap global descriptor
        (``similarity.shortlist``); their pairs get the metrics.
    shortlist_from : int
        The number of images from which ``auto`` uses the shortlist.
    """

    metrics: tuple[str, ...] = DEFAULT_METRICS
    metric_params: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: {name: dict(p) for name, p in DEFAULT_METRIC_PARAMS.items()}
    )
    block_size: int = 32
    fuse: tuple[float, ...] | str = DEFAULT_FUSE
    calibration: str = "rank"
    cache: bool = True
    cache_dir: str | None = None
    cache_size_gb: float = 4.0
    shortlist: str = "auto"
    shortlist_k: int = 20
    shortlist_from: int = 2000

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
        if isinstance(self.fuse, str):
            if self.fuse not in ("equal", "none", "learned"):
                raise ConfigError(
                    f"similarity.fuse must be 'learned', 'equal', 'none' or one weight per "
                    f"metric, got {self.fuse!r}"
                )
            if self.fuse == "learned":
                self._check_pair_model()
        else:
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
        if self.shortlist not in ("auto", "on", "off"):
            raise ConfigError(
                f"similarity.shortlist must be 'auto', 'on' or 'off', got {self.shortlist!r}"
            )
        for name in ("shortlist_k", "shortlist_from"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"similarity.{name} must be a positive integer, got {value!r}")

    def _check_pair_model(self) -> None:
        model = DEFAULT_PAIR_MODEL
        missing = [m for m in model.metrics if m not in self.metrics]
        if missing:
            raise ConfigError(
                f"similarity.fuse = 'learned' combines {', '.join(model.metrics)} (the pair "
                f"model was fitted on them); add {', '.join(missing)} to similarity.metrics, "
                "or fuse 'equal'"
            )
        for name, fitted in model.fitted_params().items():
            now = self.metric(name).params()
            changed = sorted(k for k in fitted if now.get(k) != fitted[k])
            if changed:
                raise ConfigError(
                    f"similarity.fuse = 'learned' was fitted on {name} with "
                    + ", ".join(f"{k} = {fitted[k]!r}" for k in changed)
                    + "; keep those parameters or fuse 'equal'"
                )

    def fuses(self) -> bool:
        """Whether the metrics' matrices are combined into a ``fused`` matrix (then clustered)."""
        return self.fuse == "learned" or self.fusion_weights() is not None

    def pair_model(self) -> PairModel:
        """The pair classifier of ``fuse = 'learned'``."""
        return DEFAULT_PAIR_MODEL

    def uses_shortlist(self, n_images: int) -> bool:
        """Whether ``n_images`` images are compared through the shortlist."""
        if self.shortlist == "auto":
            return n_images >= self.shortlist_from
        return self.shortlist == "on"

    def fusion_weights(self) -> tuple[float, ...] | None:
        """The weights of a weighted fusion, or None (no fusion, or the learned one)."""
        if self.fuse in ("none", "learned") or (self.fuse == "equal" and len(self.metrics) < 2):
            return None
        if self.fuse == "equal":
            return (1.0,) * len(self.metrics)
        return tuple(self.fuse)  # type: ignore[arg-type]

    def metric(self, name: str):  # noqa: ANN201 - returns a Metric
        """The configured metric object for ``name``."""
        return get_metric(name, **dict(self.metric_params.get(name, {})))
