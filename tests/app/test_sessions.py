"""The per-session store of the web app: bounded in bytes, least recently used first,
released after a disconnect's grace period or an idle timeout (app/sessions.py)."""

from __future__ import annotations

import numpy as np

from app.sessions import MIB, SessionStore, size_of


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_size_of_counts_arrays_exactly_and_once():
    a = np.zeros((100, 100), dtype=np.float32)
    assert size_of(a) == 40_000
    assert size_of(a[10:20]) == 40_000  # a view holds its base
    assert 40_000 <= size_of({"x": a, "y": [a, a]}) < 41_000
    assert size_of(b"x" * 1000) >= 1000


def test_size_of_counts_what_is_held_not_what_a_property_would_make(tmp_path, monkeypatch):
    """Pixels kept on disk are not read (nor counted), a shortlist's n x n matrix is not
    made: only the objects' own attributes are walked."""
    from preprocessing.spill import PixelSpill
    from preprocessing.work import SpilledWorkImage, WorkImage
    from similarity import ShortlistMatrix

    spill = PixelSpill(tmp_path)
    gray = np.zeros((200, 200), np.float32)
    image = SpilledWorkImage.spill(WorkImage("a", gray, gray > 0, np.eye(3)), spill)
    n = 3000
    matrix = ShortlistMatrix(tuple(map(str, range(n))), np.array([[0, 1]]), np.array([0.5]), "m")

    def refuse(self):  # noqa: ANN001, ANN202
        raise AssertionError("read through a property")

    for cls, name in (
        (SpilledWorkImage, "gray"),
        (SpilledWorkImage, "mask"),
        (ShortlistMatrix, "values"),
    ):
        monkeypatch.setattr(cls, name, property(refuse))
    assert size_of(image) < 10_000  # not the 200 kB of pixels on disk
    assert size_of(matrix) < 400_000  # the ids and one pair, not 72 MB


def test_an_object_several_values_share_is_counted_once_in_the_store():
    # what the web app keeps: the images, a result that holds them, and the images the
    # result came from (the same object); five such sessions fit under a 1 GiB bound
    # when each really holds 180 MiB (counting the images three times, 5 x 360 MiB did
    # not, and the soak test's concurrent sessions released one another's results)
    store = SessionStore(max_bytes=1024 * MIB)
    for name in "abcde":
        images = {"pixels": np.zeros(90 * MIB, dtype=np.uint8)}
        result = {"images": images, "matrices": np.zeros(90 * MIB, dtype=np.uint8)}
        store.put(name, "images", images)
        store.put(name, "result", result)
        store.put(name, "result_images", images)
    assert store.sessions() == set("abcde")
    assert 5 * 180 * MIB <= store.nbytes < 5 * 181 * MIB
    assert store.drop_session("a") >= 180 * MIB  # what it held alone
    shared = np.zeros(100 * MIB, dtype=np.uint8)
    store.put("f", "images", shared)
    store.put("g", "images", shared)
    assert store.drop_session("f") < MIB  # g still holds the pixels: nothing freed


def test_the_bound_holds_and_the_least_recently_used_session_goes_first():
    clock = Clock()
    store = SessionStore(max_bytes=3 * MIB, clock=clock)
    for i, name in enumerate(["a", "b", "c"]):
        clock.now = i
        store.put(name, "result", np.zeros(MIB // 8))  # 1 MiB each
    assert store.nbytes <= 3 * MIB
    clock.now = 3
    assert store.get("a", "result") is not None  # a is used again: b is now the oldest
    clock.now = 4
    store.put("d", "result", np.zeros(MIB // 8))
    assert store.nbytes <= 3 * MIB
    assert store.get("b", "result") is None
    assert "memory bound (3 MiB)" in store.released("b")
    assert all(store.get(s, "result") is not None for s in ("a", "c", "d"))
    assert store.released("a") == ""


def test_a_session_is_released_whole_and_never_by_its_own_put():
    store = SessionStore(max_bytes=MIB)
    store.put("a", "images", np.zeros(MIB // 16))  # 0.5 MiB
    store.put("a", "result", np.zeros(MIB // 4))  # 2 MiB: over the bound, alone
    assert store.get("a", "images") is not None and store.get("a", "result") is not None
    store.put("b", "images", np.zeros(10))
    assert store.get("a", "images") is None and store.get("a", "result") is None
    assert store.sessions() == {"b"}


def test_a_disconnected_session_goes_after_the_grace_period_only():
    clock = Clock()
    store = SessionStore(max_bytes=100 * MIB, grace_seconds=60, clock=clock)
    store.put("gone", "result", np.zeros(1000))
    store.put("here", "result", np.zeros(1000))
    connected = {"here"}
    assert store.prune(connected.__contains__) == 0  # first seen disconnected
    clock.now = 59
    assert store.prune(connected.__contains__) == 0
    assert store.sessions() == {"gone", "here"}
    clock.now = 61
    assert store.prune(connected.__contains__) >= 8000
    assert store.sessions() == {"here"}


def test_a_reconnect_within_the_grace_period_keeps_everything():
    clock = Clock()
    store = SessionStore(max_bytes=100 * MIB, grace_seconds=60, clock=clock)
    store.put("s", "result", np.zeros(1000))
    store.prune(lambda s: False)
    clock.now = 30
    store.prune(lambda s: True)  # back
    clock.now = 100
    store.prune(lambda s: False)
    assert store.sessions() == {"s"}  # the grace period starts again


def test_an_idle_session_is_released_and_told_why():
    clock = Clock()
    store = SessionStore(max_bytes=100 * MIB, idle_seconds=1800, clock=clock)
    store.put("s", "result", np.zeros(1000))
    clock.now = 1799
    store.prune(lambda s: True)
    assert store.get("s", "result") is not None  # the get counts as use
    clock.now = 1799 + 1801
    assert store.prune(lambda s: True) > 0
    assert store.get("s", "result") is None
    assert store.released("s") == "no use for 30 minutes"
    store.acknowledge("s")
    assert store.released("s") == ""


def test_every_session_seen_is_closed_after_its_browser_went():
    clock = Clock()
    store = SessionStore(max_bytes=100 * MIB, grace_seconds=10, clock=clock)
    store.get("light", "images")  # a session that never kept anything
    store.put("heavy", "result", np.zeros(1000))
    closed: list[str] = []
    store.prune(lambda s: False, closed.append)
    clock.now = 11
    store.prune(lambda s: False, closed.append)
    assert sorted(closed) == ["heavy", "light"]
    clock.now = 30
    store.prune(lambda s: False, closed.append)
    assert len(closed) == 2  # closed once
