"""The metric registry: one name, one metric object."""

from __future__ import annotations

import dataclasses
from typing import Any

from preprocessing.errors import ConfigError

from .base import Metric
from .brushstroke import Brushstroke
from .contour import Contour
from .cwssim import CWSSIM
from .embedding import Embedding
from .hashes import AverageHash, BlockMeanHash, MarrHildrethHash, PHash
from .hog import HOG
from .mse import MSE
from .sift import SIFT
from .ssim import SSIM

__all__ = ["METRICS", "READY_METRICS", "get_metric", "seeded_metric"]

#: Name -> metric with default parameters. Adding a metric = one module + one entry.
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        SIFT(),
        Contour(),
        SSIM(),
        CWSSIM(),
        MSE(),
        Brushstroke(),
        HOG(),
        PHash(),
        AverageHash(),
        BlockMeanHash(),
        MarrHildrethHash(),
        Embedding(),  # needs model=...; see similarity.embedding
    )
}

#: The metrics that run with no file from the user (every one but those needing a model):
#: what the web app offers and what ``compare`` computes.
READY_METRICS: tuple[str, ...] = tuple(n for n, m in METRICS.items() if not m.needs_model)


def get_metric(name: str, **params: Any) -> Metric:
    """The registered metric ``name`` with ``params`` overriding its defaults.

    Raises
    ------
    ConfigError
        For an unknown name (listing the valid ones) or an unknown parameter
        (listing the metric's parameters).
    """
    try:
        base = METRICS[name]
    except KeyError:
        raise ConfigError(
            f"unknown metric {name!r}; valid metrics: {', '.join(sorted(METRICS))}"
        ) from None
    fields = {f.name for f in dataclasses.fields(base)}  # type: ignore[arg-type]
    unknown = sorted(set(params) - fields)
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {', '.join(unknown)} for metric {name!r}; "
            f"valid: {', '.join(sorted(fields)) or 'none'}"
        )
    try:
        return dataclasses.replace(base, **params)  # type: ignore[type-var]
    except (TypeError, ValueError) as err:
        raise ConfigError(f"bad parameters for metric {name!r}: {err}") from err


def seeded_metric(name: str, random_state: int, **params: Any) -> Metric:
    """The metric ``name`` with ``params``, its random steps (RANSAC) seeded with
    ``random_state`` when it has any: the one rule by which a run's seed reaches a metric."""
    if "seed" in get_metric(name).params():  # an unknown name: ConfigError listing them
        params["seed"] = random_state
    return get_metric(name, **params)
