"""What every metric provides."""

from __future__ import annotations

import dataclasses
import threading
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

__all__ = ["Metric", "scratch"]

_SCRATCH = threading.local()
#: Scratch sets a thread keeps (a metric's subbands have a few shapes; a run one size).
_SCRATCH_SETS = 16


def scratch(tag: str, shape: tuple[int, ...], count: int) -> list[np.ndarray]:
    """``count`` float32 arrays of ``shape``, reused by this thread under ``tag``.

    A pair's large temporaries, made fresh for every pair, would spend the time in
    page faults. The caller owns the arrays until its next call with the same tag.
    """
    sets = getattr(_SCRATCH, "sets", None)
    if sets is None:
        sets = _SCRATCH.sets = {}
    key = (tag, tuple(shape), count)
    if key not in sets:
        if len(sets) >= _SCRATCH_SETS:
            sets.clear()
        sets[key] = [np.empty(shape, np.float32) for _ in range(count)]
    return sets[key]


class Metric(ABC):
    """A similarity metric: features once per image, a score once per pair.

    Subclasses are frozen dataclasses whose fields are the metric's
    parameters; ``version`` changes whenever the features or the score change
    meaning, so cached features from an older version are not reused.

    The contract (checked for every registered metric by the shared test
    suite): ``compare`` returns a float in [0, 1], exactly 1.0 for features of
    identical inputs, symmetric in its arguments.
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    #: True when the score moves in steps (bit counts) or saturates (SIFT's inlier
    #: share): growing noise then lowers it in a non-increasing staircase, not strictly.
    saturates: ClassVar[bool] = False
    #: How much the score may rise between two steps of growing noise or blur: 0 for
    #: most; more for metrics whose detection adapts to each image (contours found at
    #: the image's own gradient percentiles come and go a little as blur grows).
    order_slack: ClassVar[float] = 0.0
    #: True when ``extract`` returns one 1-D vector per image, usable as clustering features.
    vector_features: ClassVar[bool] = False
    #: Whether it needs a model file the user supplies (not offered without one).
    needs_model: ClassVar[bool] = False

    @abstractmethod
    def extract(self, image: np.ndarray, mask: np.ndarray) -> Any:
        """Features of one work image.

        Parameters
        ----------
        image : (M, N) ndarray of float32
            Grayscale work image in [0, 1].
        mask : (M, N) ndarray of bool
            True where ``image`` holds valid content.
        """

    @abstractmethod
    def compare(self, a: Any, b: Any) -> float:
        """Similarity in [0, 1] of two images' features (as returned by ``prepare``)."""

    def prepare(self, features: Any) -> Any:
        """Expand compact features into what ``compare`` works on (default: unchanged).

        Features are what is cached on disk and shipped to workers; ``prepare``
        builds derived arrays that are cheaper to recompute than to move (a
        local mean and variance, say). The engine calls it once per image in
        each block of pairs, never once per pair.
        """
        return features

    def evidence(self, a: Any, b: Any) -> dict[str, Any]:
        """What shows why two images got their score (see ``similarity.explain``).

        Keys a metric may return: ``local_map`` (a map of local similarity in
        [0, 1]), ``keypoints_a``, ``keypoints_b``, ``matches``, ``inliers``,
        ``transform`` (3 x 3, positions in a -> positions in b). Default: none.
        """
        return {}

    def check_ready(self) -> None:  # noqa: B027 - a hook: most metrics are always ready
        """Raise ``ConfigError`` if the metric cannot run as configured (default: it can)."""

    def params(self) -> dict[str, Any]:
        """The metric's parameters as a plain dict."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]
