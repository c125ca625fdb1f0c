"""Property-based tests that try to break the boundaries: decoder, config loader, metrics."""

from __future__ import annotations

import numpy as np
import pytest
from factory import encode, pattern
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.config import config_from_dict
from preprocessing import ConfigError, ImageLoadError, WorkImage
from preprocessing._decode import decode_image
from similarity import METRICS, pairwise

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALID = [
    encode(pattern(40, 50, s), fmt)
    for s, fmt in enumerate(["PNG", "JPEG", "TIFF", "BMP", "GIF", "WEBP"])
]


def _decode(data: bytes):
    return decode_image(data, name="fuzz", max_pixels=4_000_000, min_side=16, max_side=512)


def _check(data: bytes) -> None:
    try:
        d = _decode(data)
    except ImageLoadError as err:
        assert err.path == "fuzz" and err.reason
        return
    assert d.pixels.dtype == np.float32 and d.pixels.ndim == 3 and d.pixels.shape[2] == 3
    assert np.isfinite(d.pixels).all() and d.pixels.min() >= 0 and d.pixels.max() <= 1


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_decode_or_give_a_reason(data):
    _check(data)


@FUZZ
@given(
    st.sampled_from(range(len(VALID))),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=12),
    st.integers(0, 10_000),
)
def test_mutated_valid_files_decode_or_give_a_reason(which, flips, cut):
    data = bytearray(VALID[which])
    for pos, value in flips:
        data[pos % len(data)] = value
    _check(bytes(data[: max(1, len(data) - cut % len(data))]))


SECTIONS = ["load", "preprocess", "similarity", "clustering", "report"]
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.lists(st.integers(-3, 3), max_size=3),
)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(SECTIONS + ["random_state", "n_jobs", "colour"]),
        st.one_of(VALUES, st.dictionaries(st.text(max_size=14), VALUES, max_size=3)),
        max_size=4,
    )
)
def test_config_data_builds_or_names_the_problem(data):
    try:
        config_from_dict(data)
    except ConfigError as err:
        assert str(err)
    # any other exception type fails the test


@FUZZ
@given(
    st.sampled_from(sorted(n for n in METRICS if n != "embedding")),
    st.integers(0, 2**32 - 1),
    st.sampled_from(["random", "constant", "zeros", "ones"]),
)
def test_metrics_on_small_or_constant_images_stay_in_bounds(name, seed, kind):
    rng = np.random.default_rng(seed)
    size = 32
    if kind == "random":
        imgs = [rng.random((size, size), dtype=np.float32) for _ in range(3)]
    else:
        value = {"constant": float(rng.random()), "zeros": 0.0, "ones": 1.0}[kind]
        imgs = [np.full((size, size), value, np.float32)] + [
            rng.random((size, size), dtype=np.float32) for _ in range(2)
        ]
    ims = [WorkImage(f"i{i}", g, np.ones(g.shape, bool), np.eye(3)) for i, g in enumerate(imgs)]
    mat = pairwise(ims, METRICS[name], n_jobs=1)
    assert np.all(np.diag(mat.values) == 1.0) and np.array_equal(mat.values, mat.values.T)
    assert mat.values.min() >= 0.0 and mat.values.max() <= 1.0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels_are_refused_at_the_boundary(bad):
    g = np.random.default_rng(0).random((32, 32), dtype=np.float32)
    g[3, 4] = bad
    ims = [
        WorkImage("bad", g, np.ones(g.shape, bool), np.eye(3)),
        WorkImage("ok", np.zeros_like(g), np.ones(g.shape, bool), np.eye(3)),
    ]
    with pytest.raises(ValueError, match="bad: work image has non-finite values"):
        pairwise(ims, METRICS["ssim"], n_jobs=1)
