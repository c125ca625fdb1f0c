"""The on-disk cache of features and pair similarities.

Keys: a work image is identified by the SHA-256 of the work image the metric
sees (its pixels and mask): a function of the file's SHA-256 and of the
preprocessing, so a changed preprocessing never reuses stale features, and
an unchanged one reuses them across runs. A metric is identified by its
name, its code version and its parameters (JSON, sorted), plus this module's
format version.

Entries are checksummed (SHA-256 of the pickled payload, stored beside it);
an entry that fails the check or does not unpickle is counted as corrupt,
dropped and recomputed. diskcache stores entries in SQLite with
transactions, so two processes can share one cache directory at once; pair
rows are merged inside a transaction, so concurrent writers lose no value.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diskcache
import numpy as np

from preprocessing.work import WorkImage

from .base import Metric

__all__ = ["FeatureCache", "CacheStats", "default_cache_dir", "work_key", "metric_key"]

FORMAT_VERSION = "1"


def default_cache_dir() -> Path:
    """``$ATELIER_CACHE_DIR``, else ``$XDG_CACHE_HOME/atelier``, else ``~/.cache/atelier``."""
    env = os.environ.get("ATELIER_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "atelier"


def work_key(image: WorkImage) -> str:
    """SHA-256 of a work image's pixels, mask and shape."""
    digest = hashlib.sha256()
    gray = np.ascontiguousarray(image.gray, np.float32)
    digest.update(str(gray.shape).encode())
    digest.update(gray.tobytes())
    digest.update(np.packbits(np.asarray(image.mask, bool)).tobytes())
    return digest.hexdigest()


def metric_key(metric: Metric) -> str:
    """Name, code version and parameters of a metric, as one short string."""
    params = json.dumps(metric.params(), sort_keys=True, default=str)
    digest = hashlib.sha256(params.encode()).hexdigest()[:16]
    return f"{metric.name}/v{metric.version}/f{FORMAT_VERSION}/{digest}"


@dataclass
class CacheStats:
    """What one metric's computation took from and added to the cache, and how long
    its features and its pairs took (wall seconds)."""

    features_cached: int = 0
    features_computed: int = 0
    pairs_cached: int = 0
    pairs_computed: int = 0
    corrupt: int = 0
    seconds_features: float = 0.0
    seconds_pairs: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


def _pack(value: Any) -> bytes:
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return hashlib.sha256(payload).digest() + payload


def _unpack(blob: Any) -> Any:
    if not isinstance(blob, bytes) or len(blob) < 32:
        raise ValueError("not an Atelier cache entry")
    digest, payload = blob[:32], blob[32:]
    if hashlib.sha256(payload).digest() != digest:
        raise ValueError("checksum mismatch")
    return pickle.loads(payload)  # noqa: S301 - our own checksummed entries


class FeatureCache:
    """Features per (metric, work image) and pair rows per (metric, work image).

    Parameters
    ----------
    directory : path-like, optional
        Where the cache lives; :func:`default_cache_dir` when ``None``.
    size_limit_gb : float
        Least-recently-stored entries are evicted beyond this size.
    """

    def __init__(
        self, directory: str | os.PathLike[str] | None = None, *, size_limit_gb: float = 4.0
    ) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._cache = diskcache.Cache(
            str(self.directory),
            size_limit=int(size_limit_gb * 2**30),
            eviction_policy="least-recently-stored",
        )

    def close(self) -> None:
        self._cache.close()

    def __enter__(self) -> FeatureCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:  # workers reopen the same directory
        return {"directory": self.directory, "size": self._cache.size_limit}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.directory = state["directory"]
        self._cache = diskcache.Cache(str(self.directory), size_limit=state["size"])

    # -- raw access with checksums ---------------------------------------------------------
    def _get(self, key: str, stats: CacheStats) -> tuple[bool, Any]:
        blob = self._cache.get(key, default=None)
        if blob is None:
            return False, None
        try:
            return True, _unpack(blob)
        except Exception:  # any failure to read back is corruption: drop and recompute
            stats.corrupt += 1
            self._cache.delete(key)
            return False, None

    # -- features ---------------------------------------------------------------------------
    def get_features(self, mkey: str, keys: Iterable[str], stats: CacheStats) -> dict[str, Any]:
        """Cached features of the given work-image keys (missing keys are absent)."""
        found = {}
        for key in keys:
            hit, value = self._get(f"f/{mkey}/{key}", stats)
            if hit:
                found[key] = value
        return found

    def put_features(self, mkey: str, features: Mapping[str, Any]) -> None:
        with self._cache.transact():
            for key, value in features.items():
                self._cache.set(f"f/{mkey}/{key}", _pack(value))

    # -- pair rows --------------------------------------------------------------------------
    def get_rows(
        self, mkey: str, keys: Iterable[str], stats: CacheStats
    ) -> dict[str, dict[str, float]]:
        """Per work-image key, the cached similarities to other work-image keys."""
        rows = {}
        for key in keys:
            hit, value = self._get(f"p/{mkey}/{key}", stats)
            rows[key] = value if hit and isinstance(value, dict) else {}
        return rows

    def put_pairs(self, mkey: str, values: Mapping[tuple[str, str], float]) -> None:
        """Store pair similarities in both images' rows, merged atomically."""
        updates: dict[str, dict[str, float]] = {}
        for (ka, kb), v in values.items():
            updates.setdefault(ka, {})[kb] = float(v)
            updates.setdefault(kb, {})[ka] = float(v)
        scratch = CacheStats()
        with self._cache.transact():
            for key, new in updates.items():
                hit, row = self._get(f"p/{mkey}/{key}", scratch)
                merged = {**(row if hit and isinstance(row, dict) else {}), **new}
                self._cache.set(f"p/{mkey}/{key}", _pack(merged))
