"""What the web app keeps per browser session, in one store bounded in bytes.

A web app that many share must give memory back: each session's images, result and
evidence live here, not in the session itself, so that

- the whole store stays under a bound in bytes (``ATELIER_SESSION_CACHE_MB``, default
  2048): when a new value would pass it, the least recently used values of any session
  go first;
- a session whose browser has gone (closed tab, reload, lost network) is released after
  a grace period (``ATELIER_SESSION_GRACE_S``, default 60 s; a reconnect within it finds
  everything in place);
- a session left open but unused is released after an idle timeout
  (``ATELIER_SESSION_IDLE_MIN``, default 30 minutes);
- memory released is handed back to the operating system (``malloc_trim`` where the C
  library has it), so the server's resident size falls when sessions end.

A session whose values were released is told why (:meth:`SessionStore.released`), so
the page can say so instead of silently showing an empty app. No Streamlit here: the
web layer passes session ids and whether a session is still connected.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from preprocessing.memory import release_freed_memory

__all__ = [
    "SessionStore",
    "size_of",
    "held_objects",
    "give_back_memory",
    "store_from_environment",
]

MIB = 2**20


def size_of(value: Any) -> int:
    """Bytes held by ``value``: arrays and bytes counted exactly (each object once),
    containers, dataclasses and plain objects walked, anything else by
    ``sys.getsizeof``. An estimate of what releasing it would free.

    >>> size_of(np.zeros((10, 10)))
    800
    >>> a = np.zeros(1000, dtype=np.uint8)
    >>> size_of([a, a, b"xyz"]) < 2000  # the shared array counted once
    True
    """
    return sum(held_objects(value).values())


def held_objects(value: Any, _held: dict[int, int] | None = None) -> dict[int, int]:
    """The objects ``value`` holds, by ``id``, with the bytes each holds itself: what
    :func:`size_of` sums. Two values sharing an object (a result that holds the image
    set it was computed from, kept beside that image set) share its entry, so a store
    can count the union of its values once."""
    held = {} if _held is None else _held
    if id(value) in held:
        return held
    if isinstance(value, np.ndarray):
        base = value.base if isinstance(value.base, np.ndarray) else None
        if base is not None:
            held[id(value)] = 0
            return held_objects(base, held)
        held[id(value)] = int(value.nbytes)
        return held
    held[id(value)] = sys.getsizeof(value)
    if isinstance(value, (bytes, bytearray, memoryview, str)):
        return held
    if isinstance(value, dict):
        for k, v in value.items():
            held_objects(k, held)
            held_objects(v, held)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            held_objects(v, held)
    elif isinstance(getattr(value, "__dict__", None), dict) and not isinstance(value, type):
        # what the object holds, not its properties: a spilled image's pixels are read
        # from disk and a shortlist's n x n matrix made, each time they are asked for
        held_objects(vars(value), held)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            held_objects(getattr(value, f.name, None), held)
    return held


def _human(nbytes: int) -> str:
    return f"{nbytes / MIB:.0f} MiB" if nbytes >= MIB else f"{nbytes} bytes"


def give_back_memory() -> None:
    """Collect garbage and hand free heap pages back to the operating system (glibc's
    ``malloc_trim``; a no-op elsewhere). Without it, memory freed by one session stays
    in the process's heap and its resident size never falls."""
    gc.collect()
    release_freed_memory()


@dataclasses.dataclass
class _Entry:
    value: Any
    held: dict[int, int]  # held_objects(value): what it holds, by id, in bytes


class SessionStore:
    """Values per (session, key), bounded in bytes, least recently used evicted first.

    Parameters
    ----------
    max_bytes : int
        The bound on the sum of the values' sizes (:func:`size_of`). A single value
        larger than the bound is still kept (the session needs it) after every other
        value has gone.
    idle_seconds : float
        A session not touched for this long is released.
    grace_seconds : float
        A session found disconnected is released once it has been so this long.
    clock : callable
        The time source (seconds); tests pass their own.

    Examples
    --------
    >>> store = SessionStore(max_bytes=1000, idle_seconds=60, grace_seconds=5)
    >>> store.put("s1", "result", np.zeros(100))       # 800 bytes
    >>> store.put("s2", "result", np.zeros(50))        # 400 more: session s1 goes
    >>> store.get("s1", "result") is None, store.released("s1")
    (True, 'the memory bound (1000 bytes)')
    """

    def __init__(
        self,
        max_bytes: int,
        idle_seconds: float = 1800.0,
        grace_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = int(max_bytes)
        self.idle_seconds = float(idle_seconds)
        self.grace_seconds = float(grace_seconds)
        self._clock = clock
        self._lock = threading.RLock()
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._touched: dict[str, float] = {}
        self._gone_since: dict[str, float] = {}
        self._released: dict[str, str] = {}

    # -- values -------------------------------------------------------------------
    def get(self, session: str, key: str, default: Any = None) -> Any:
        with self._lock:
            self._touch(session)
            entry = self._entries.get((session, key))
            if entry is None:
                return default
            self._entries.move_to_end((session, key))
            return entry.value

    def put(self, session: str, key: str, value: Any) -> None:
        """Keep ``value``. While the store would pass its bound, whole sessions go, the
        least recently used first (a session is kept whole or released whole; the one
        putting is never evicted)."""
        held = held_objects(value)
        with self._lock:
            self._touch(session)
            self._released.pop(session, None)
            self._entries.pop((session, key), None)
            self._entries[(session, key)] = _Entry(value, held)
            evicted = False
            while self.nbytes > self.max_bytes:
                others = [s for s in self._touched if s != session and self._holds(s)]
                if not others:
                    break
                oldest = min(others, key=lambda s: self._touched[s])
                self.drop_session(oldest, f"the memory bound ({_human(self.max_bytes)})")
                evicted = True
        if evicted:
            give_back_memory()

    def pop(self, session: str, key: str) -> Any:
        with self._lock:
            entry = self._entries.pop((session, key), None)
        return None if entry is None else entry.value

    def find(self, key: str, value: Any) -> str | None:
        """The session holding ``value`` under ``key`` (compared with ``==``), if any:
        how a reloaded page finds the uploads its previous session kept."""
        with self._lock:
            for (owner, k), entry in self._entries.items():
                if k == key and entry.value == value:
                    return owner
        return None

    def released(self, session: str) -> str:
        """Why some of this session's values were released ('' if none were)."""
        with self._lock:
            return self._released.get(session, "")

    def acknowledge(self, session: str) -> None:
        """The session has been told; forget the reason."""
        with self._lock:
            self._released.pop(session, None)

    # -- sizes --------------------------------------------------------------------
    @property
    def nbytes(self) -> int:
        """Bytes held by every value in the store, an object shared by several values
        (or sessions) counted once."""
        with self._lock:
            union: dict[int, int] = {}
            for entry in self._entries.values():
                union.update(entry.held)
            return sum(union.values())

    def sessions(self) -> set[str]:
        with self._lock:
            return {s for s, _ in self._entries}

    # -- ending -------------------------------------------------------------------
    def drop_session(self, session: str, reason: str = "") -> int:
        """Release every value of ``session``; returns the bytes released."""
        with self._lock:
            before = self.nbytes
            keys = [k for k in self._entries if k[0] == session]
            for k in keys:
                del self._entries[k]
            freed = before - self.nbytes
            self._touched.pop(session, None)
            self._gone_since.pop(session, None)
            if keys and reason:
                self._released[session] = reason
        return freed

    def prune(
        self,
        is_connected: Callable[[str], bool] | None = None,
        on_gone: Callable[[str], None] | None = None,
    ) -> int:
        """Release sessions idle too long, or disconnected for longer than the grace
        period (``is_connected(session)`` says which are still connected; None skips
        that test). ``on_gone(session)`` is called for each session released because its
        browser went, holding values or not (the web layer closes it for good). Returns
        the bytes released; they are handed back to the system."""
        now = self._clock()
        freed = 0
        with self._lock:
            seen = set(self._touched) | self.sessions()
        for session in seen:
            with self._lock:
                idle = now - self._touched.get(session, now)
            if idle > self.idle_seconds and self._holds(session):
                freed += self.drop_session(
                    session, f"no use for {self.idle_seconds / 60:.0f} minutes"
                )
                continue
            if is_connected is None:
                continue
            if is_connected(session):
                self._gone_since.pop(session, None)
                continue
            gone = self._gone_since.setdefault(session, now)
            if now - gone >= self.grace_seconds:
                freed += self.drop_session(session)
                with self._lock:
                    self._released.pop(session, None)  # nobody is left to tell
                if on_gone is not None:
                    on_gone(session)
        if freed:
            give_back_memory()
        return freed

    def _holds(self, session: str) -> bool:
        return any(k[0] == session for k in self._entries)

    def _touch(self, session: str) -> None:
        self._touched[session] = self._clock()
        self._gone_since.pop(session, None)


def store_from_environment() -> SessionStore:
    """The store with the bounds of the environment (or the defaults)."""
    return SessionStore(
        max_bytes=int(float(os.environ.get("ATELIER_SESSION_CACHE_MB", "2048")) * MIB),
        idle_seconds=float(os.environ.get("ATELIER_SESSION_IDLE_MIN", "30")) * 60,
        grace_seconds=float(os.environ.get("ATELIER_SESSION_GRACE_S", "60")),
    )
