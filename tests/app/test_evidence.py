"""One pair-evidence function: every score it shows is the matrix entry, with the
analysis' own metric parameters and seed."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from app.config import AnalysisConfig
from app.evidence import pair_evidence
from app.pipeline import run_analysis
from preprocessing import load_folder


@pytest.fixture(scope="module")
def analysed(samples_dir):
    images = load_folder(samples_dir / "images")
    keep = [r for r in images if r.id.startswith(("cartoon_a_", "print_"))][:8]
    subset = type(images)(tuple(keep))
    # non-default parameters and seed: the evidence must use these, not the registry's
    config = AnalysisConfig().replace(
        similarity={
            "metrics": ["contour", "sift", "cw-ssim", "ssim"],
            "fuse": "equal",
            "metric_params": {"cw-ssim": {"height": 3, "first_scale": 0}, "ssim": {"sigma": 2.0}},
            "cache": False,
        },
        random_state=7,
        n_jobs=1,
    )
    return run_analysis(subset, config)


def _numbers(fig) -> list[str]:
    text = fig.info["title"]
    return re.findall(r"(\S+) (\d\.\d{3})", text)


@pytest.mark.parametrize("pair", [(0, 1), (0, 5), (2, 7), (6, 3)])
def test_every_score_shown_equals_the_matrix_entry(analysed, pair):
    i, j = pair
    res = analysed
    view = pair_evidence(res.aligned.images, res.matrices, res.config, i, j)
    assert set(view.scores) == set(res.matrices) == {"contour", "sift", "cw-ssim", "ssim", "fused"}
    for name, m in res.matrices.items():
        assert abs(view.scores[name] - m.values[i, j]) <= 1e-9, name
    # the evidence is computed with the analysis' parameters and seed: its own scores
    # agree with the matrix too
    assert abs(view.matched.similarity - res.matrices["sift"].values[i, j]) <= 1e-9
    assert abs(view.traced.similarity - res.matrices["contour"].values[i, j]) <= 1e-9
    printed = dict(_numbers(view.figures["pair"]))
    assert printed == {name: f"{res.matrices[name].values[i, j]:.3f}" for name in res.matrices}
    title = view.figures["contour"].info["title"]
    assert title.endswith(f"similarity {res.matrices['contour'].values[i, j]:.3f}")


def test_the_seed_reaches_the_ransac_metrics(analysed):
    cfg = analysed.config
    assert cfg.metric("sift").seed == 7 and cfg.metric("contour").seed == 7
    assert analysed.matrices["sift"].params["seed"] == 7
    other = cfg.replace(random_state=3)
    assert other.metric("sift").seed == 3
    with pytest.raises(Exception, match="set random_state"):
        AnalysisConfig().replace(similarity={"metric_params": {"sift": {"seed": 1}}})
    assert np.isfinite(analysed.matrices["fused"].values).all()


def test_closer_than_is_the_share_of_other_pairs_below():
    from app.evidence import closer_than

    s = np.array([[1.0, 0.9, 0.1, 0.2], [0.9, 1.0, 0.3, 0.4], [0.1, 0.3, 1.0, 0.5],
                  [0.2, 0.4, 0.5, 1.0]])  # fmt: skip
    assert closer_than(s, 0, 1) == 100.0  # the closest of 6 pairs: above the 5 others
    assert closer_than(s, 0, 2) == 0.0
    assert closer_than(s, 1, 3) == 60.0  # above 0.1, 0.2, 0.3 of the 5 others


def test_why_the_probability_disagrees_with_a_metric():
    from app.evidence import standing_in_rows, why_fused_disagrees
    from similarity import SimilarityMatrix

    ids = ("a", "b", "c", "d", "e")
    # sift is low everywhere; the pair (a, b) is low overall but each one's nearest
    sift = np.array([[1, .06, .01, .02, .01], [.06, 1, .02, .01, .01], [.01, .02, 1, .9, .8],
                     [.02, .01, .9, 1, .85], [.01, .01, .8, .85, 1]])  # fmt: skip
    fused = np.array([[1, .9, .1, .1, .1], [.9, 1, .1, .1, .1], [.1, .1, 1, .9, .9],
                      [.1, .1, .9, 1, .9], [.1, .1, .9, .9, 1]])  # fmt: skip
    mats = {"sift": SimilarityMatrix(ids, sift, "sift", {}),
            "fused": SimilarityMatrix(ids, fused, "fused", {})}  # fmt: skip
    assert standing_in_rows(sift, 0, 1)[:2] == (1, 1)
    lines = why_fused_disagrees(mats, "fused", 0, 1)
    assert (
        len(lines) == 1
        and "sift 0.060 is low next to the pairs called the same template here (their median 0.850)"
        in lines[0]
    ), lines
    assert "B is A's 1st nearest image and A is B's 1st" in lines[0], lines
    # agreement (a high probability and a high score) says nothing
    assert why_fused_disagrees(mats, "fused", 2, 3) == []


def test_the_full_resolution_views_take_the_registration_that_worked():
    """SIFT's transform unless the contour test scored the pair higher with its own
    (copies that swap light and dark defeat SIFT); never a mirrored fit."""
    from types import SimpleNamespace as NS

    import numpy as np

    from app.evidence import registration

    s, c = np.eye(3), np.diag([2.0, 2.0, 1.0])

    def view(sift, contour, t_sift, t_contour, mirrored=False):
        return NS(
            scores={"sift": sift, "contour": contour},
            matched=NS(transform=t_sift, mirrored=False),
            traced=NS(transform=t_contour, mirrored=mirrored),
        )

    assert registration(view(0.9, 0.5, s, c))[1] == "SIFT's verified transform"
    t, by = registration(view(0.05, 0.6, s, c))
    assert by == "the contour test's fit" and np.array_equal(t, c)
    assert registration(view(0.05, 0.6, s, c, mirrored=True))[1] == "SIFT's verified transform"
    assert registration(view(0.05, 0.6, None, c))[1] == "the contour test's fit"
    assert registration(view(0.05, 0.6, None, None)) == (None, "")


def test_evidence_reads_the_features_the_analysis_cached(samples_dir, tmp_path, monkeypatch):
    """With the analysis' cache, a pair's evidence extracts nothing the analysis already
    extracted (contour and SIFT here), and shows the same scores as without it."""
    from similarity.cache import FeatureCache
    from similarity.contour import Contour

    images = load_folder(samples_dir / "images")
    subset = type(images)(tuple(r for r in images if r.id.startswith("cartoon_b_")))
    config = AnalysisConfig().replace(
        similarity={"metrics": ["contour", "sift"], "cache_dir": str(tmp_path)}, n_jobs=1
    )
    result = run_analysis(subset, config)
    works = result.aligned.images
    without = pair_evidence(works, result.matrices, config, 0, 1)
    calls = []
    real = Contour.extract

    def counted(self, image, mask):  # noqa: ANN001, ANN202
        calls.append(1)
        return real(self, image, mask)

    monkeypatch.setattr(Contour, "extract", counted)
    with FeatureCache(tmp_path) as cache:
        cached = pair_evidence(works, result.matrices, config, 0, 1, cache=cache)
    assert calls == []
    assert cached.traced.similarity == without.traced.similarity
    assert cached.matched.similarity == without.matched.similarity


def test_without_a_cache_the_evidence_reads_the_analysis_own_features(
    samples_dir, tmp_path, monkeypatch
):
    """A run that keeps no cache still extracts each image's features once: the report's
    pair evidence reads them from the run's private cache, which goes with the result and
    leaves nothing in the cache folder."""
    import gc
    import tempfile

    from app.outputs import _draw_evidence, _evidence_jobs, _figure_payload
    from similarity.contour import Contour
    from similarity.sift import SIFT

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    images = load_folder(samples_dir / "images")
    subset = type(images)(tuple(r for r in images if r.id.startswith("cartoon_b_")))
    cache_dir = tmp_path / "cache"
    config = AnalysisConfig().replace(
        similarity={"metrics": ["contour", "sift"], "cache": False, "cache_dir": str(cache_dir)},
        n_jobs=1,
    )
    result = run_analysis(subset, config)
    folder = result.private_cache.directory
    assert folder.parent == tmp_path / "tmp"
    calls = []
    for metric in (Contour, SIFT):
        real = metric.extract

        def counted(self, image, mask, real=real):  # noqa: ANN001, ANN202
            calls.append(type(self).__name__)
            return real(self, image, mask)

        monkeypatch.setattr(metric, "extract", counted)
    jobs = _evidence_jobs(result)
    assert jobs
    files = _draw_evidence(_figure_payload(result), jobs[0][1])
    assert calls == [] and any(name.endswith("_contour.png") for name in files)
    assert not cache_dir.exists() or not any(cache_dir.iterdir())
    del result, jobs
    gc.collect()
    assert not folder.exists()


def test_the_evidence_reads_the_cache_the_analysis_used(tmp_path):
    """The report's and the web app's evidence read the run's private cache, else the
    configured feature cache (one handle a process), else extract (no cache)."""
    from types import SimpleNamespace

    from app.outputs import evidence_cache
    from similarity.cache import PrivateFeatureCache

    cached = AnalysisConfig().replace(similarity={"cache_dir": str(tmp_path / "c")})
    uncached = AnalysisConfig().replace(similarity={"cache": False})
    private = PrivateFeatureCache(tmp_path)
    try:
        assert evidence_cache(SimpleNamespace(private_cache=private, config=uncached)) is private
        got = evidence_cache(SimpleNamespace(private_cache=None, config=cached))
        assert got is not None and got.directory == tmp_path / "c"
        assert evidence_cache(SimpleNamespace(private_cache=None, config=cached)) is got
        assert evidence_cache(SimpleNamespace(private_cache=None, config=uncached)) is None
    finally:
        private.discard()


def _contour_evidence(rows: int = 200) -> tuple[object, np.ndarray]:
    """A's outline a square; B's the same square, its right side 20 px off A's."""
    from similarity import PairEvidence

    side = np.arange(40, 160, dtype=np.float32)
    edge = np.full_like(side, 40.0)
    square = np.concatenate([np.stack(p, axis=1) for p in (
        (side, edge), (side, edge + 120), (edge, side), (edge + 120, side)
    )])  # fmt: skip
    moved = square.copy()
    right = moved[:, 0] == 160
    moved[right, 0] += 20  # B's right side departs by 20 px
    deviation = np.where(right, 20.0, 0.0)
    blank = np.ones((rows, rows), np.float32)
    ev = PairEvidence(
        "contour", 0.5, blank, blank, blank, np.ones_like(blank, bool), 0 * blank,
        contours_a=square, contours_b=moved, deviation=deviation, aligned=True, sigma=2.0,
    )  # fmt: skip
    return ev, right


def test_the_contour_figure_colours_each_outline_by_its_departure():
    """Composed in pixels: each of B's outline points in plasma's colour of its departure
    (capped at the bar's top), A's outline magenta where B's does not cover it, the title
    kept with the image and in its PNG."""
    import io

    from PIL import Image

    from app.plots import image_png
    from app.plots._pixels import coloured
    from app.plots.evidence import contour_evidence_figure

    ev, right = _contour_evidence()
    near, far = coloured(np.array([0.0, 4.0]), "plasma", 0.0, 4.0)  # the bar's top: 4 px

    def drawn(evidence) -> tuple[Image.Image, dict[str, int]]:
        fig = contour_evidence_figure("a.jpg", "b.jpg", evidence, tolerance_px=2.0, score=0.25)
        pixels = np.asarray(fig).reshape(-1, 3).astype(int)
        found = {
            name: int((np.abs(pixels - np.asarray(c, int)).sum(axis=1) <= 6).sum())
            for name, c in (("near", near), ("far", far), ("magenta", (208, 28, 139)))
        }
        return fig, found

    fig, found = drawn(ev)
    assert fig.info["title"].endswith("A = a.jpg   B = b.jpg   similarity 0.250")
    with Image.open(io.BytesIO(image_png(fig))) as png:
        assert png.info["Title"] == fig.info["title"]
    # the same outlines with no departure: the 120 far points turn from yellow to dark
    _, none_far = drawn(dataclasses.replace(ev, deviation=np.zeros(len(right))))
    assert found["far"] - none_far["far"] >= 120 * 2  # at least 2 pixels a point
    assert none_far["near"] - found["near"] >= 120 * 2
    # 20 px off at 2.4 display pixels a work pixel: B's right side leaves A's uncovered
    assert found["magenta"] >= 120 * 2


def test_the_pair_figure_draws_every_match_and_scores_in_its_title():
    from app.plots.evidence import PAIR_PANEL, pair_evidence_figure
    from similarity import PairEvidence

    rng = np.random.default_rng(0)
    a = rng.random((120, 160)).astype(np.float32)
    points = np.array([[20.0, 30.0], [100.0, 60.0], [140.0, 100.0]], np.float32)
    ev = PairEvidence(
        "sift", 0.7, a, a, a, np.ones_like(a, bool), 0 * a, keypoints_a=points,
        keypoints_b=points, matches=np.array([[0, 0], [1, 1], [2, 2]]),
        inliers=np.array([True, True, False]), transform=np.eye(3),
    )  # fmt: skip

    def lines(evidence) -> tuple[int, int]:
        fig = pair_evidence_figure("a.jpg", "b.jpg", evidence, None, {"sift": 0.7, "ssim": 0.1234})
        assert fig.info["title"] == "A = a.jpg   B = b.jpg\nsift 0.700, ssim 0.123"
        rgb = np.asarray(fig).astype(int)
        green = (rgb[..., 1] > 200) & (rgb[..., 0] < 80) & (rgb[..., 2] < 80)
        red = (rgb[..., 0] > 180) & (rgb[..., 1] < 140) & (rgb[..., 2] < 140)
        return int(green.sum()), int(red.sum())

    green, red = lines(ev)
    # each match joins a point to the same point in B, 168 work pixels right, drawn at
    # PAIR_PANEL / 120 display pixels a work pixel: two inliers green, one rejected red
    length = 168 * PAIR_PANEL / 120
    assert 2 * length * 0.6 <= green <= 2 * length * 2.5
    assert length * 0.4 <= red <= length * 2.5
    assert lines(dataclasses.replace(ev, matches=np.zeros((0, 2), int))) == (0, 0)
