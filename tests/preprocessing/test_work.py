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


def test_images_decoded_at_the_work_size_are_not_copied_to_be_prepared():
    from preprocessing.work import scale_to_fit

    pixels = np.random.default_rng(1).random((40, 64, 3), dtype=np.float32)
    fitted = scale_to_fit(pixels, 64)
    assert np.shares_memory(fitted, pixels) and np.array_equal(fitted, pixels)
    assert not fitted.flags.writeable  # nothing downstream can change the record's pixels
    # out of range or another dtype: a clipped float32 copy, as before
    loud = pixels * 2.0
    clipped = scale_to_fit(loud, 64)
    assert not np.shares_memory(clipped, loud) and float(clipped.max()) == 1.0
    doubles = scale_to_fit(pixels.astype(np.float64), 64)
    assert doubles.dtype == np.float32 and np.array_equal(doubles, pixels)
