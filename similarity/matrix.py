"""The similarity matrix record."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from preprocessing.errors import MatrixError
from preprocessing.matrix import ATOL, check_similarity_matrix, similarity_to_distance

__all__ = ["SimilarityMatrix", "ShortlistMatrix"]


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

    @property
    def partial(self) -> bool:
        """Whether only some pairs were compared (shortlist mode)."""
        return self.compared is not None

    def value(self, i: int, j: int) -> float:
        """The similarity of images ``i`` and ``j`` (0.0 for a pair not compared)."""
        return float(self.values[i, j])

    def values_at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """The similarities of the pairs ``(rows[k], cols[k])`` (0.0 where not compared)."""
        return np.asarray(self.values[np.asarray(rows), np.asarray(cols)], np.float64)

    def row(self, i: int) -> np.ndarray:
        """Image ``i``'s similarities to every image, shape ``(n,)`` (1.0 at ``i``, 0.0
        for a pair not compared)."""
        return np.asarray(self.values[i])

    def upper(self) -> tuple[np.ndarray, np.ndarray]:
        """The compared pairs ``(i, j)``, ``i < j``, in row order, shape ``(m, 2)``, and
        their similarities, shape ``(m,)``."""
        n = len(self.ids)
        iu = np.triu_indices(n, k=1)
        keep = np.ones(len(iu[0]), bool) if self.compared is None else self.compared[iu]
        pairs = np.column_stack([iu[0][keep], iu[1][keep]]).astype(np.int64)
        return pairs, self.values[iu][keep]

    def digest_arrays(self) -> list[np.ndarray]:
        """The arrays that determine the matrix' values, for keys of what is made from
        it (a dense matrix's values, a shortlist's pairs and their values)."""
        return [self.values] if self.compared is None else [self.values, self.compared]

    def with_stats(self, stats: dict[str, Any]) -> SimilarityMatrix:
        """The same matrix with other ``stats``."""
        return replace(self, stats=stats)


class ShortlistMatrix(SimilarityMatrix):
    """A :class:`SimilarityMatrix` of the pairs a shortlist compared, held as those pairs.

    At 10,000 images an n x n matrix of floats is 0.8 GB, and a run held several (each
    metric's, the combined one, the distances) where the shortlist compared 0.3 % of
    the pairs. This one holds the compared pairs and their values; ``values`` and
    ``compared`` are made n x n when read (each read a new array: read them once, or
    use :meth:`value`, :meth:`row` and :meth:`upper`, which do not).

    Parameters
    ----------
    ids : sequence of str
    pairs : (m, 2) array of int
        The compared pairs ``(i, j)``, ``i < j``, each once, sorted.
    pair_values : (m,) array of float
        Their similarities, in [0, 1].
    metric : str
    params, stats : dict, optional
    """

    def __init__(  # noqa: PLR0913
        self,
        ids: tuple[str, ...] | list[str],
        pairs: np.ndarray,
        pair_values: np.ndarray,
        metric: str,
        params: dict[str, Any] | None = None,
        stats: dict[str, Any] | None = None,
    ) -> None:
        n = len(ids)
        pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
        vals = np.asarray(pair_values, np.float64).reshape(-1)
        if len(vals) != len(pairs):
            raise MatrixError(f"{metric}: {len(pairs)} pairs and {len(vals)} values")
        if len(pairs) and (
            (pairs[:, 0] >= pairs[:, 1]).any() or pairs.min() < 0 or pairs.max() >= n
        ):
            raise MatrixError(f"{metric}: pairs must be (i, j) with 0 <= i < j < {n}")
        code = pairs[:, 0] * n + pairs[:, 1]
        if len(code) > 1 and (np.diff(code) <= 0).any():
            raise MatrixError(f"{metric}: pairs must be sorted and each listed once")
        if not np.isfinite(vals).all():
            k = int(np.flatnonzero(~np.isfinite(vals))[0])
            raise MatrixError(f"{metric} matrix has a non-finite value at {tuple(pairs[k])}")
        if len(vals) and (vals.min() < -ATOL or vals.max() > 1 + ATOL):
            bad = vals.min() if vals.min() < -ATOL else vals.max()
            raise MatrixError(f"{metric} matrix values must be in [0, 1], found {bad}")
        vals = np.clip(vals, 0.0, 1.0)
        pairs.setflags(write=False)
        vals.setflags(write=False)
        code.setflags(write=False)
        for name, value in (
            ("ids", tuple(ids)),
            ("metric", metric),
            ("params", dict(params or {})),
            ("stats", dict(stats or {})),
            ("pairs", pairs),
            ("pair_values", vals),
            ("_code", code),
        ):
            object.__setattr__(self, name, value)

    pairs: np.ndarray
    pair_values: np.ndarray
    _code: np.ndarray

    @property  # type: ignore[override]
    def values(self) -> np.ndarray:
        """The n x n matrix (0.0 for a pair not compared), made anew on each read."""
        n = len(self.ids)
        out = np.eye(n)
        i, j = self.pairs[:, 0], self.pairs[:, 1]
        out[i, j] = out[j, i] = self.pair_values
        out.setflags(write=False)
        return out

    @property  # type: ignore[override]
    def compared(self) -> np.ndarray:
        """The n x n mask of compared pairs (diagonal True), made anew on each read."""
        n = len(self.ids)
        out = np.eye(n, dtype=bool)
        out[self.pairs[:, 0], self.pairs[:, 1]] = out[self.pairs[:, 1], self.pairs[:, 0]] = True
        out.setflags(write=False)
        return out

    def distance(self) -> np.ndarray:
        """``1 - values`` with an exact zero diagonal (n x n, made on each call)."""
        out = 1.0 - self.values
        np.fill_diagonal(out, 0.0)
        return out

    @property
    def partial(self) -> bool:
        return True

    def off_diagonal(self) -> np.ndarray:
        return self.pair_values

    def pairs_compared(self) -> int:
        return len(self.pairs)

    def value(self, i: int, j: int) -> float:
        if i == j:
            return 1.0
        a, b = min(i, j), max(i, j)
        key = a * len(self.ids) + b
        k = int(np.searchsorted(self._code, key))
        found = k < len(self._code) and self._code[k] == key
        return float(self.pair_values[k]) if found else 0.0

    def values_at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
        lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
        key = lo * len(self.ids) + hi
        at = np.minimum(np.searchsorted(self._code, key), max(len(self._code) - 1, 0))
        found = (self._code[at] == key) if len(self._code) else np.zeros(len(key), bool)
        out = np.where(found, self.pair_values[at] if len(self._code) else 0.0, 0.0)
        return np.where(rows == cols, 1.0, out)

    def row(self, i: int) -> np.ndarray:
        out = np.zeros(len(self.ids))
        left = self.pairs[:, 1] == i
        right = self.pairs[:, 0] == i
        out[self.pairs[left, 0]] = self.pair_values[left]
        out[self.pairs[right, 1]] = self.pair_values[right]
        out[i] = 1.0
        return out

    def upper(self) -> tuple[np.ndarray, np.ndarray]:
        return self.pairs, self.pair_values

    def digest_arrays(self) -> list[np.ndarray]:
        return [np.asarray(len(self.ids)), self.pairs, self.pair_values]

    def with_stats(self, stats: dict[str, Any]) -> ShortlistMatrix:
        return ShortlistMatrix(
            self.ids, self.pairs, self.pair_values, self.metric, self.params, stats
        )

    def __repr__(self) -> str:  # not the dataclass' one, which would make n x n arrays
        return (
            f"ShortlistMatrix(metric={self.metric!r}, n={len(self.ids)}, pairs={len(self.pairs)})"
        )

    #: What a digest by value reads (app._digest.feed): not the n x n ``values``.
    _DIGEST_FIELDS = ("ids", "metric", "params", "stats", "pairs", "pair_values")
