"""Work images: gray conversion, aspect-preserving fit with a validity mask."""

from __future__ import annotations

import numpy as np
import pytest

from preprocessing import AlignedSet, fit_to_canvas, make_work_image, rgb_to_gray


def test_gray_uses_rgb_weights_in_rgb_order():
    red = np.zeros((4, 4, 3), np.float32)
    red[..., 0] = 1.0
    blue = np.zeros((4, 4, 3), np.float32)
    blue[..., 2] = 1.0
    assert rgb_to_gray(red)[0, 0] == pytest.approx(0.2126, abs=1e-6)
    assert rgb_to_gray(blue)[0, 0] == pytest.approx(0.0722, abs=1e-6)


@pytest.mark.parametrize("rows,cols", [(100, 200), (200, 100), (64, 64), (10, 1000)])
def test_fit_keeps_aspect_and_masks_padding(rows, cols):
    gray = np.random.default_rng(0).random((rows, cols), dtype=np.float32)
    canvas, mask = fit_to_canvas(gray, 128)
    assert canvas.shape == mask.shape == (128, 128)
    valid_rows = int(mask.any(axis=1).sum())
    valid_cols = int(mask.any(axis=0).sum())
    assert max(valid_rows, valid_cols) == 128
    # aspect ratio kept to within one pixel of rounding
    assert (
        abs(valid_cols / valid_rows - cols / rows)
        <= (cols / rows) / min(valid_rows, valid_cols) + 1e-9
    )
    assert mask.sum() == valid_rows * valid_cols  # one solid rectangle
    assert 0.0 <= canvas.min() and canvas.max() <= 1.0


def test_mean_image_ignores_invalid_pixels():
    a = make_work_image("a", np.ones((32, 64, 3), np.float32), 64)
    b = make_work_image("b", np.zeros((64, 64, 3), np.float32), 64)
    mean = AlignedSet((a, b), 64).mean_image()
    assert mean[0, 0] == 0.0  # only b is valid in the top padding of a
    assert mean[32, 32] == pytest.approx(0.5)
