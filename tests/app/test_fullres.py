"""B registered onto A at the originals' resolution, from the work images' registration."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from benchsets import _drawing, _record

from app.config import AnalysisConfig
from app.fullres import register_originals
from app.pipeline import prepare_images
from preprocessing import ImageSet
from preprocessing.errors import ConfigError
from similarity import explain, get_metric


def _moved(img: np.ndarray, angle: float, scale: float, shift: tuple[float, float], size):
    rows, cols = img.shape[:2]
    mat = cv2.getRotationMatrix2D((cols / 2, rows / 2), angle, scale)
    mat[:, 2] += shift
    return cv2.warpAffine(img, mat, size, flags=cv2.INTER_CUBIC, borderValue=(0.9, 0.9, 0.9))


@pytest.mark.parametrize("align", ["translation", "affine"])
def test_b_lands_on_a_at_full_resolution(align):
    rng = np.random.default_rng(5)
    a = _drawing(rng, 900)  # 900 rows
    # B: the same drawing rotated 6 degrees, enlarged 1.4x, shifted, on a larger sheet
    b = _moved(a, 6.0, 1.4, (150.0, 90.0), (1300, 1400))
    other = _drawing(rng, 700)
    records = [_record("a.png", a), _record("b.png", b), _record("c.png", other)]
    config = AnalysisConfig().replace(preprocess={"align": align})
    _, aligned = prepare_images(ImageSet(tuple(records)), config, None, None, {})
    wa, wb = aligned.images[0], aligned.images[1]
    ev = explain(wa, wb, get_metric("sift"))
    assert ev.transform is not None
    pair = register_originals(records[0], records[1], wa, wb, ev.transform, max_side=2048)
    assert pair.a.shape == a.shape and pair.scale_a == 1.0  # 900 px: not reduced
    inside = pair.valid & (cv2.erode(pair.valid.astype(np.uint8), np.ones((9, 9))) > 0)
    assert inside.mean() > 0.7
    diff = np.abs(pair.a - pair.b_on_a).mean(axis=2)[inside]
    # measured: mean 0.009 (translation) and 0.016 (affine), 99th percentile 0.24-0.39
    # (antialiased outlines a pixel or so off), 90 % of A covered
    assert diff.mean() < 0.03, diff.mean()
    # the outlines coincide to about a pixel of the original: the dark strokes overlap
    dark_a = (pair.a.mean(axis=2) < 0.3) & inside
    dark_b = (pair.b_on_a.mean(axis=2) < 0.3) & inside
    near_b = cv2.dilate(dark_b.astype(np.uint8), np.ones((5, 5))) > 0
    assert (dark_a & near_b).sum() / max(dark_a.sum(), 1) > 0.9


def test_the_view_is_reduced_to_the_chosen_size_and_identity_is_exact():
    rng = np.random.default_rng(6)
    a = _drawing(rng, 1200)
    records = [_record("a.png", a), _record("b.png", _drawing(rng, 600))]
    _, aligned = prepare_images(ImageSet(tuple(records)), AnalysisConfig(), None, None, {})
    wa = aligned.images[0]
    pair = register_originals(records[0], records[0], wa, wa, np.eye(3), max_side=600)
    assert max(pair.a.shape[:2]) == 600 and pair.scale_a == pytest.approx(2.0)
    assert pair.valid[2:-2, 2:-2].all()
    assert np.abs(pair.a - pair.b_on_a)[2:-2, 2:-2].max() < 1e-3
    with pytest.raises(ConfigError, match="evidence size"):
        register_originals(records[0], records[0], wa, wa, None, max_side=10)


@pytest.mark.parametrize(
    "name",
    ["a.png", "images/print_astronaut_2.jpg", "x" * 61,
     "images/very_long_name_of_a_painting_from_the_national_gallery_london_1520.tif"],
)  # fmt: skip
def test_figure_names_are_wrapped_whole(name):
    """Grid figures show every file name whole (wrapped, never cut at the start)."""
    from app.plots._base import _wrapped

    lines = _wrapped(name).split("\n")
    assert "".join(lines) == name
    assert all(len(line) <= 24 for line in lines)


def _shifted_pair(shift_px: float, side: int = 1200):
    """A drawing and the same drawing moved ``shift_px`` to the right, as a registered
    pair whose registration missed the move (so the outlines lie that far apart)."""
    from app.fullres import RegisteredPair

    a = _drawing(np.random.default_rng(8), side)
    mat = np.float32([[1, 0, shift_px], [0, 1, 0]])
    rows, cols = a.shape[:2]
    b = cv2.warpAffine(a, mat, (cols, rows), flags=cv2.INTER_CUBIC, borderValue=(0.9,) * 3)
    valid = np.ones((rows, cols), bool)
    valid[:, : int(np.ceil(shift_px)) + 1] = False
    return RegisteredPair(a, b, b, valid, scale_a=2.0, registered=True)


@pytest.mark.parametrize("shift", [0.0, 12.0, 30.0])
def test_outline_deviation_is_measured_in_pixels_of_the_original(shift):
    """The deviation map's median distance equals the move (x2: the view is half the
    original), and the outline picture is drawn in the view's frame."""
    from app.fullres import outline_views
    from similarity.contour import Contour

    pair = _shifted_pair(shift)
    views = outline_views(pair, Contour(), work_side=256)
    assert views.outlines.shape == views.deviation.shape == pair.a.shape
    assert views.sigma_px == pytest.approx(4.0 * 1200 / 256)
    # horizontal outlines do not move with a horizontal shift: the median sits below it
    assert 0.4 * 2 * shift - 1.0 <= views.median_px <= 2 * shift + 1.0, views.median_px
    if shift == 0.0:
        assert views.median_px == 0.0
    assert views.top_px == pytest.approx(max(2 * 0.01 * 1200 * 2, 4.0))


def test_sift_matches_agree_where_the_registration_holds():
    from app.fullres import match_view

    same = match_view(_shifted_pair(0.0))
    assert same.matched >= 50 and same.agreeing / same.matched > 0.95
    moved = match_view(_shifted_pair(30.0))  # 30 px > the 4.8 px tolerance
    assert moved.matched >= 50 and moved.agreeing / moved.matched < 0.05
    assert same.a.shape == same.b.shape == _shifted_pair(0.0).a.shape


def test_every_view_is_written_in_one_frame():
    from app.fullres import evidence_jpegs
    from similarity.contour import Contour

    pair = _shifted_pair(5.0, side=600)
    files = evidence_jpegs(pair, Contour(), work_side=256)
    assert sorted(files) == sorted(
        f"{n}.jpg"
        for n in ("a", "b_on_a", "overlay", "outlines", "deviation", "matches_a", "matches_b")
    )
    shapes = {
        cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_COLOR).shape for d in files.values()
    }
    assert shapes == {pair.a.shape}
