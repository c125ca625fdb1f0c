"""The similarity matrix record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from preprocessing.errors import MatrixError
from preprocessing.matrix import check_similarity_matrix, similarity_to_distance

__all__ = ["SimilarityMatrix"]


@dataclass(frozen=True, eq=False)
class SimilarityMatrix:
    """Pairwise similarities of a set of images, with the ids beside the values.

    Attributes
    ----------
    ids : tuple of str
        Image ids, in row (and column) order.
    values : (n, n) ndarray of float64
        Similarities in [0, 1], symmetric, 1.0 on the diagonal (checked).
    metric : str
        Name of the metric (or ``"fused"``).
    params : dict
        The metric's parameters, for the record.
    stats : dict
        How the matrix was computed (features and pairs computed or taken
        from the cache); empty when not recorded.
    compared : (n, n) ndarray of bool or None
        In shortlist mode, the pairs that were compared (symmetric, diagonal
        True); the others hold 0.0, "judged dissimilar by the shortlist".
        ``None``: every pair was compared.
    """

    ids: tuple[str, ...]
    values: np.ndarray
    metric: str
    params: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    compared: np.ndarray | None = None

    def __post_init__(self) -> None:
        values = check_similarity_matrix(self.values, name=self.metric)
        if self.compared is not None:
            compared = np.asarray(self.compared, bool)
            if compared.shape != values.shape or not (compared == compared.T).all():
                raise MatrixError(f"{self.metric}: compared mask must be symmetric, {values.shape}")
            compared.setflags(write=False)
            object.__setattr__(self, "compared", compared)
        if len(self.ids) != values.shape[0]:
            raise MatrixError(
                f"{self.metric}: {len(self.ids)} ids for a matrix of shape {values.shape}"
            )
        values.setflags(write=False)
        object.__setattr__(self, "ids", tuple(self.ids))
        object.__setattr__(self, "values", values)

    def __len__(self) -> int:
        return len(self.ids)

    def distance(self) -> np.ndarray:
        """``1 - values`` with an exact zero diagonal."""
        return similarity_to_distance(self.values)

    def off_diagonal(self) -> np.ndarray:
        """The values above the diagonal, one per unordered pair that was compared."""
        iu = np.triu_indices(len(self.ids), k=1)
        if self.compared is None:
            return self.values[iu]
        return self.values[iu][self.compared[iu]]

    def pairs_compared(self) -> int:
        """Unordered pairs whose similarity was computed."""
        n = len(self.ids)
        if self.compared is None:
            return n * (n - 1) // 2
        return int((self.compared.sum() - n) // 2)
