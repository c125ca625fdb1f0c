"""The on-disk cache of features, pair similarities and results keyed by their inputs.

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
A pair row is two arrays (the other images' raw digests, sorted, and the
values: :data:`Row`); rows an earlier Atelier stored as dicts under ``p/`` are
read, moved to that form under ``r/`` on first use, and stay valid. Other
results (a clustering of a matrix, the report's figures) are stored under
``v/`` and a key that the caller makes from everything they were computed
from.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import sqlite3
import tempfile
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diskcache
import numpy as np

from preprocessing.spill import remove_stale
from preprocessing.work import WorkImage

from .base import Metric

__all__ = [
    "FeatureCache",
    "PrivateFeatureCache",
    "CacheStats",
    "Row",
    "default_cache_dir",
    "digests",
    "work_key",
    "metric_key",
]

FORMAT_VERSION = "1"

#: A run store's size limit (GB): the disk is the limit.
_UNLIMITED_GB = 2.0**20


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
    run_store_gb: float = 0.0  # features kept in a run store: they did not fit (GB)

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

    @property
    def size_limit_gb(self) -> float:
        """The size beyond which entries are evicted, in GB (2**30 bytes)."""
        return float(self._cache.size_limit) / 2**30

    def close(self) -> None:
        self._cache.close()

    def volume(self) -> int:
        """Bytes the cache holds on disk."""
        return int(self._cache.volume())

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

    def has_features(self, mkey: str, keys: Iterable[str]) -> set[str]:
        """The keys whose features are cached, found without reading them."""
        return {key for key in keys if f"f/{mkey}/{key}" in self._cache}

    def put_features(self, mkey: str, features: Mapping[str, Any]) -> int:
        """Store each work-image key's features; the bytes written."""
        written = 0
        with self._cache.transact():
            for key, value in features.items():
                blob = _pack(value)
                written += len(blob)
                self._cache.set(f"f/{mkey}/{key}", blob)
        return written

    def copy_features(self, source: FeatureCache, mkey: str, keys: Iterable[str]) -> None:
        """Store here the features ``source`` holds for ``keys``, as they are stored
        there (checksummed blobs, not unpickled)."""
        with self._cache.transact():
            for key in keys:
                blob = source._cache.get(f"f/{mkey}/{key}", default=None)
                if blob is not None:
                    self._cache.set(f"f/{mkey}/{key}", blob)

    def run_store(self) -> FeatureCache:
        """A store of its own for one run, beside this cache (``<folder>.run-<pid>-...``),
        limited only by the disk: for features the run must read back that this cache's
        size limit would evict. :meth:`discard` removes it; a run that died without doing
        so leaves one behind, removed by the next run that makes one."""
        parent, name = self.directory.parent, self.directory.name
        remove_stale(parent, f"{name}.run-")
        folder = tempfile.mkdtemp(prefix=f"{name}.run-{os.getpid()}-", dir=parent)
        return FeatureCache(folder, size_limit_gb=_UNLIMITED_GB)

    def discard(self) -> None:
        """Close this cache and delete its folder (a :meth:`run_store` at the run's end)."""
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- results keyed by their inputs ------------------------------------------------------
    def get_value(self, key: str) -> tuple[bool, Any]:
        """``(True, value)`` stored under ``key`` by :meth:`put_value`, else ``(False, None)``
        (a corrupt entry is dropped)."""
        return self._get(f"v/{key}", CacheStats())

    def put_value(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``: a digest of everything ``value`` was computed from."""
        self._cache.set(f"v/{key}", _pack(value))

    def put_values(self, values: Mapping[str, Any]) -> None:
        """:meth:`put_value` for each item, in one transaction."""
        with self._cache.transact():
            for key, value in values.items():
                self._cache.set(f"v/{key}", _pack(value))

    # -- pair rows --------------------------------------------------------------------------
    def get_rows(self, mkey: str, keys: Iterable[str], stats: CacheStats) -> dict[str, Row]:
        """Per work-image key, the cached similarities to other work-image keys, as a
        :data:`Row` (an image never compared has two empty arrays)."""
        rows = {}
        for key in keys:
            value = self._stored_row(mkey, key, stats)
            rows[key] = value if _is_row(value) else _EMPTY_ROW
        return rows

    def _stored_row(self, mkey: str, key: str, stats: CacheStats) -> Any:
        """The row stored for ``key`` (an earlier Atelier's moved to the compact form),
        or None."""
        hit, value = self._get(f"r/{mkey}/{key}", stats)
        return value if hit else self._legacy_row(mkey, key, stats)

    def _legacy_row(self, mkey: str, key: str, stats: CacheStats) -> Row | None:
        """A row stored by an earlier Atelier (a dict of hex key to value), moved to
        the compact form once, so it is read fast from then on."""
        hit, old = self._get(f"p/{mkey}/{key}", stats)
        if not hit or not isinstance(old, dict):
            return None
        row = _row(list(old), list(old.values()))
        with self._cache.transact():
            self._cache.set(f"r/{mkey}/{key}", _pack(row))
            self._cache.delete(f"p/{mkey}/{key}")
        return row

    def put_pairs(self, mkey: str, values: Mapping[tuple[str, str], float]) -> None:
        """Store pair similarities in both images' rows, merged atomically (a new value
        replaces a stored one of the same pair)."""
        updates: dict[str, tuple[list[str], list[float]]] = {}
        for (ka, kb), v in values.items():
            for key, other in ((ka, kb), (kb, ka)):
                others, vals = updates.setdefault(key, ([], []))
                others.append(other)
                vals.append(float(v))
        scratch = CacheStats()
        with self._cache.transact():
            for key, (others, vals) in updates.items():
                row = self._stored_row(mkey, key, scratch)
                new = _row(others, vals)
                if _is_row(row) and len(row[0]):
                    new = _merged(new, row)
                self._cache.set(f"r/{mkey}/{key}", _pack(new))


#: One image's cached row: the other work images' keys as raw SHA-256 digests
#: (``S32``, sorted, unique) and the similarities to them (float64, same order).
#: Numpy arrays unpickle as two buffers: 1,000 rows of 1,000 pairs load in about
#: 0.1 s, where the same rows as dicts of hex keys took 2 s.
Row = tuple[np.ndarray, np.ndarray]

_EMPTY_ROW: Row = (np.empty(0, "S32"), np.empty(0, np.float64))


def digests(keys: Iterable[str]) -> np.ndarray:
    """Hex work-image keys as raw 32-byte digests (``S32``)."""
    return np.array([bytes.fromhex(k) for k in keys], dtype="S32").reshape(-1)


def _row(keys: list[str], values: list[float]) -> Row:
    """A :data:`Row` from keys and values; of a key given twice the first value stays."""
    raw, first = np.unique(digests(keys), return_index=True)
    return raw, np.asarray(values, np.float64)[first]


def _merged(new: Row, old: Row) -> Row:
    """``new`` and ``old`` in one row; where both hold a key, ``new``'s value stays."""
    raw, first = np.unique(np.concatenate([new[0], old[0]]), return_index=True)
    return raw, np.concatenate([new[1], old[1]])[first]


def _is_row(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], np.ndarray)
        and value[0].dtype == np.dtype("S32")
        and isinstance(value[1], np.ndarray)
        and value[0].shape == value[1].shape
    )


#: Name prefix of a :class:`PrivateFeatureCache`'s folder: ``atelier-features-<pid>-...``.
PRIVATE_PREFIX = "atelier-features-"


def _remove_private(cache: diskcache.Cache, folder: str) -> None:
    cache.close()
    shutil.rmtree(folder, ignore_errors=True)


def _borrowed(directory: str, size: int) -> PrivateFeatureCache:
    # a worker's copy of a private cache: the same folder, which it does not own
    cache = PrivateFeatureCache.__new__(PrivateFeatureCache)
    cache.__setstate__({"directory": Path(directory), "size": size})
    cache._finalizer = None
    cache._failed = False
    return cache


class PrivateFeatureCache(FeatureCache):
    """A feature cache of one analysis, for a run that keeps no cache (``--no-cache``):
    each image's features are still extracted once, and what reads them again after the
    similarities (the pair evidence of the report, at 640 px 1.2 s of each pair's 3 s
    when extracted again) reads them from here.

    Its folder (``atelier-features-<pid>-...`` in ``parent``, the system's temporary
    folder by default) is removed when the object is garbage-collected, at exit, or by
    :meth:`discard`; :meth:`close` only closes the handle (it opens again on use). A copy
    sent to a worker process reads and writes the same folder and removes nothing; a
    folder left by a process that died is removed by the next one made beside it.

    It only saves work, so it never fails a run: the first write that fails (a full
    disk, a file size limit) stops its writes, and what it does not hold is extracted
    again by whoever reads it (a worker that misses a feature has its block's features
    extracted again, as after an eviction).

    Parameters
    ----------
    parent : path-like, optional
    size_limit_gb : float
        Least-recently-stored entries are evicted beyond this size: what is evicted is
        extracted again when read.
    """

    _finalizer: weakref.finalize[Any, Any] | None
    _failed: bool

    def __init__(
        self, parent: str | os.PathLike[str] | None = None, *, size_limit_gb: float = 1.0
    ) -> None:
        base = Path(parent) if parent is not None else Path(tempfile.gettempdir())
        base.mkdir(parents=True, exist_ok=True)
        remove_stale(base, PRIVATE_PREFIX)
        folder = tempfile.mkdtemp(prefix=f"{PRIVATE_PREFIX}{os.getpid()}-", dir=base)
        try:
            super().__init__(folder, size_limit_gb=size_limit_gb)
        except BaseException:  # a full disk: no folder left behind
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self._failed = False
        self._finalizer = weakref.finalize(self, _remove_private, self._cache, folder)

    def _write(self, write: Any, *args: Any) -> Any:
        if self._failed:
            return None
        try:
            return write(*args)
        except (OSError, sqlite3.Error):
            self._failed = True
            return None

    def put_features(self, mkey: str, features: Mapping[str, Any]) -> int:
        return self._write(super().put_features, mkey, features) or 0

    def copy_features(self, source: FeatureCache, mkey: str, keys: Iterable[str]) -> None:
        self._write(super().copy_features, source, mkey, keys)

    def put_pairs(self, mkey: str, values: Mapping[tuple[str, str], float]) -> None:
        self._write(super().put_pairs, mkey, values)

    def put_value(self, key: str, value: Any) -> None:
        self._write(super().put_value, key, value)

    def put_values(self, values: Mapping[str, Any]) -> None:
        self._write(super().put_values, values)

    def discard(self) -> None:
        """Close the cache and remove its folder now (a worker's copy removes nothing)."""
        if self._finalizer is not None:
            self._finalizer()

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        return (_borrowed, (str(self.directory), int(self._cache.size_limit)))
