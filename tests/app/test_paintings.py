"""The real paintings are fetched only on request, checked by SHA-256, and say clearly when not."""

from __future__ import annotations

import pytest

from app.paintings import PAINTINGS, PaintingsUnavailable, fetch_paintings, paintings_dir


def test_nothing_is_downloaded_unless_asked(tmp_path):
    with pytest.raises(PaintingsUnavailable, match="downloaded on request"):
        fetch_paintings(tmp_path, download=False)
    assert not paintings_dir(tmp_path).exists() or not any(paintings_dir(tmp_path).iterdir())


def test_a_tampered_cache_is_not_trusted(tmp_path):
    folder = paintings_dir(tmp_path)
    folder.mkdir(parents=True)
    for name in PAINTINGS:
        (folder / name).write_bytes(b"not the photograph")
    with pytest.raises(PaintingsUnavailable):
        fetch_paintings(tmp_path, download=False)


def test_eleven_photographs_with_their_digests():
    assert len(PAINTINGS) == 11
    assert all(len(d) == 64 and int(d, 16) >= 0 for d in PAINTINGS.values())
