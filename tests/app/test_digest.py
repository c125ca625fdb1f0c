"""Digests by value (app._digest): the bytes fed for each kind of value are pinned, so
that a key stays what it was (stored figures and clusterings are found by it)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from app._digest import feed


class _Recorder:
    def __init__(self):
        self.parts: list[bytes] = []

    def update(self, data: bytes) -> None:
        self.parts.append(bytes(data))


@dataclasses.dataclass
class _Inner:
    name: str
    flag: bool


@dataclasses.dataclass
class _Outer:
    inner: _Inner
    values: np.ndarray
    extra: dict


def test_every_kind_of_value_is_fed_as_pinned():
    value = _Outer(
        _Inner("a", True),
        np.array([1, 2], np.int16),
        {"k": [None, 1, 2.5, Path("p"), np.float32(0.5)], 3: (False,)},
    )
    got = _Recorder()
    feed(got, value)
    assert got.parts == [
        b"d_Outer", b"inner", b"d_Inner", b"name", b"vstr'a'", b"flag", b"vboolTrue",
        b"values", b"<i2(2,)", np.array([1, 2], np.int16).tobytes(),
        b"extra", b"m2", b"vstr'k'", b"slist5", b"vNoneTypeNone", b"vint1", b"vfloat2.5",
        b"vPosixPath" + repr(Path("p")).encode(),
        b"vfloat32" + repr(np.float32(0.5)).encode(),
        b"vint3", b"stuple1", b"vboolFalse",
    ]  # fmt: skip
    # fed twice, the same digest; a field changed, another
    a, b = hashlib.sha256(), hashlib.sha256()
    feed(a, value)
    feed(b, dataclasses.replace(value, inner=_Inner("a", False)))
    again = hashlib.sha256()
    feed(again, value)
    assert a.hexdigest() == again.hexdigest() != b.hexdigest()
