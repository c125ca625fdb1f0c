"""Digests by value, for the keys of what a run stores and reuses: arrays, nested
results and source files."""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["feed", "feed_array", "source_digest"]


def feed_array(digest: Any, array: np.ndarray) -> None:
    """Feed an array to ``digest``: its dtype, its shape and its bytes in C order."""
    a = np.ascontiguousarray(array)
    digest.update(f"{a.dtype.str}{a.shape}".encode())
    digest.update(a.tobytes())


#: The plain values, fed as their type's name and ``repr``.
_SCALARS = (str, int, float, bool, type(None))

#: Each dataclass's field names, looked up once (``dataclasses.fields`` each time cost
#: a third of a thousand images' analysis key).
_FIELDS: dict[type, tuple[str, ...]] = {}


def feed(digest: Any, obj: Any) -> None:
    """Feed ``obj`` to ``digest`` by value, field by field: equal values give equal bytes
    however the objects are shared (a pickle writes an object met twice as a reference,
    so a clustering read back from the cache pickled unlike the same one computed)."""
    if type(obj) in _SCALARS:  # most of what is fed: the same bytes as the branch below
        digest.update(f"v{type(obj).__name__}{obj!r}".encode())
    elif isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            feed(digest, obj.tolist())
        else:
            feed_array(digest, obj)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        digest.update(f"d{type(obj).__qualname__}".encode())
        names = _FIELDS.get(type(obj))
        if names is None:  # a class may name what determines it (not a costly property)
            names = getattr(type(obj), "_DIGEST_FIELDS", None) or tuple(
                f.name for f in dataclasses.fields(obj)
            )
            _FIELDS[type(obj)] = names
        for name in names:
            digest.update(name.encode())
            feed(digest, getattr(obj, name))
    elif isinstance(obj, dict):
        digest.update(f"m{len(obj)}".encode())
        for key, value in obj.items():
            feed(digest, key)
            feed(digest, value)
    elif isinstance(obj, list | tuple):  # named tuples too
        digest.update(f"s{type(obj).__qualname__}{len(obj)}".encode())
        for value in obj:
            feed(digest, value)
    elif isinstance(obj, set | frozenset):
        feed(digest, sorted(obj, key=repr))
    elif obj is None or isinstance(obj, str | int | float | bool | Path | np.generic):
        digest.update(f"v{type(obj).__name__}{obj!r}".encode())
    else:
        digest.update(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def source_digest(paths: Iterable[Path]) -> str:
    """SHA-256 of source files (names and contents, in the order given): code that
    changed gives another key, so nothing it computed before is reused."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
