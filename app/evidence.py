"""The evidence of one pair, as the report, compare, query and every web page show it.

:func:`pair_evidence` is the one place that builds it: from an analysis' work
images, matrices and configuration, it reads the pair's scores from the
matrices (so every number on a figure or table is the matrix entry) and draws
the figures with the metrics as the analysis configured them (parameters and
seed), so the evidence agrees with the result beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from preprocessing import ImageRecord
from preprocessing.work import WorkImage
from similarity import PairEvidence, SimilarityMatrix, explain
from similarity.cache import FeatureCache
from similarity.contour import Contour
from similarity.registry import seeded_metric

from .config import AnalysisConfig
from .plots.evidence import contour_evidence_figure, pair_evidence_figure

__all__ = [
    "PairView",
    "pair_evidence",
    "contour_metric",
    "registration",
    "closer_than",
    "standing_in_rows",
    "why_fused_disagrees",
]


def closer_than(values: np.ndarray, i: int, j: int) -> float:
    """The share (%) of the collection's other pairs that are less similar than (i, j)
    in this matrix: "closer than 97 % of the pairs in this collection"."""
    n = len(values)
    iu = np.triu_indices(n, k=1)
    others = values[iu]
    if others.size <= 1:
        return float("nan")
    below = int(np.count_nonzero(others < values[i, j]))
    return 100.0 * below / (others.size - 1)


def standing_in_rows(
    values: np.ndarray | SimilarityMatrix, i: int, j: int
) -> tuple[int, int, float]:
    """Where the pair (i, j) stands among each image's own similarities: j's rank among
    i's neighbours (1 = nearest), i's rank among j's, and how many standard deviations
    the pair lies above the two images' mean similarity to the others (averaged), the
    quantities the learned pair model reads (similarity.pairmodel.pair_features)."""
    n = len(values)
    ranks, excess = [], []
    for a, b in ((i, j), (j, i)):
        full = values.row(a) if isinstance(values, SimilarityMatrix) else np.asarray(values[a])
        row = np.delete(full, a)
        ranks.append(1 + int(np.count_nonzero(row > full[b])))
        std = float(row.std())
        excess.append((full[b] - float(row.mean())) / std if std > 0 else 0.0)
    return ranks[0], ranks[1], float(np.mean(excess)) if n > 2 else 0.0


def why_fused_disagrees(
    matrices: Mapping[str, SimilarityMatrix], key: str, i: int, j: int
) -> list[str]:
    """Sentences explaining the combined score where a metric's own score points the
    other way. Against the pairs the combined score calls the same template (0.5 or
    more; the pair itself left out): a pair called the same whose metric score is under
    half their median, or a pair called different whose metric score reaches their
    median. Empty when nothing disagrees (or no other pair is called the same)."""
    fused = matrices[key]
    p = fused.value(i, j)
    pairs, fused_values = fused.upper()  # the compared pairs (a pair not compared is 0)
    other = ~((pairs[:, 0] == min(i, j)) & (pairs[:, 1] == max(i, j)))
    same = other & (fused_values >= 0.5)
    if not same.any():
        return []
    rows, cols = pairs[same, 0], pairs[same, 1]
    lines = []
    for name, m in matrices.items():
        if name == key:
            continue
        s = m.value(i, j)
        typical = float(np.median(m.values_at(rows, cols)))
        low = p >= 0.5 and s < 0.5 * typical
        high = p < 0.5 and s >= typical
        if not (low or high):
            continue
        r_ab, r_ba, z = standing_in_rows(m, i, j)
        how = "low" if low else "high"
        lines.append(
            f"{name} {s:.3f} is {how} next to the pairs called the same template here "
            f"(their median {typical:.3f}), but under {name} B is A's {_ordinal(r_ab)} "
            f"nearest image and A is B's {_ordinal(r_ba)}, {z:+.1f} standard deviations "
            f"from the two images' usual {name} score."
        )
    return lines


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


@dataclass(frozen=True, eq=False)
class PairView:
    """The evidence of one pair.

    Attributes
    ----------
    id_a, id_b : str
    scores : dict of str to float
        Every matrix's entry for the pair (each metric, and ``fused`` when the
        analysis combined them), exactly as in the matrices.
    matched : PairEvidence
        SIFT's matches, inliers and transform (B onto A).
    traced : PairEvidence
        The contour (tracing) test: outlines, deviations, mirrored or not.
    figures : dict of str to PIL.Image.Image
        ``pair`` (matches, local map, overlay, difference) and ``contour``, as
        RGB images (their ``info["title"]`` holds the title).
    """

    id_a: str
    id_b: str
    scores: dict[str, float]
    matched: PairEvidence
    traced: PairEvidence
    figures: dict[str, Image.Image]


def _metric(config: AnalysisConfig, name: str):  # noqa: ANN202 - a Metric
    """The configured, seeded metric when the analysis computed it, else the registry's
    (seeded with the run's random_state)."""
    if name in config.similarity.metrics:
        return config.metric(name)
    return seeded_metric(name, config.random_state)


def registration(view: PairView) -> tuple[np.ndarray | None, str]:
    """The transform that carries A onto B for the full-resolution views, and whose it
    is: SIFT's verified transform, unless the contour test scored the pair higher and
    found its own (not mirrored): copies that swap light and dark defeat SIFT's
    descriptors while their outlines still align. ``(None, "")`` when neither found one
    (the analysis' alignment to the reference then relates the pair)."""
    sift, traced = view.matched, view.traced
    contour_better = view.scores.get("contour", -1.0) > view.scores.get("sift", -1.0)
    if traced.transform is not None and not traced.mirrored and contour_better:
        return np.asarray(traced.transform), "the contour test's fit"
    if sift.transform is not None:
        return np.asarray(sift.transform), "SIFT's verified transform"
    if traced.transform is not None and not traced.mirrored:
        return np.asarray(traced.transform), "the contour test's fit"
    return None, ""


def contour_metric(config: AnalysisConfig) -> Contour:
    """The contour test as the analysis configured it (or the default, seeded)."""
    metric = _metric(config, "contour")
    assert isinstance(metric, Contour)
    return metric


def pair_evidence(
    images: Sequence[WorkImage],
    matrices: Mapping[str, SimilarityMatrix],
    config: AnalysisConfig,
    i: int,
    j: int,
    *,
    record_a: ImageRecord | None = None,
    matched: PairEvidence | None = None,
    cache: FeatureCache | None = None,
) -> PairView:
    """The evidence of images ``i`` and ``j`` of an analysis.

    Parameters
    ----------
    images : sequence of WorkImage
        The analysis' aligned work images, in matrix order.
    matrices : mapping of str to SimilarityMatrix
        The analysis' matrices: the pair's scores are their entries.
    config : AnalysisConfig
        The analysis' configuration: metrics are explained with its
        parameters and its ``random_state``.
    i, j : int
    record_a : ImageRecord, optional
        A's record: deviations are then given in pixels of A's original.
    matched : PairEvidence, optional
        The pair's SIFT evidence when the caller already has it.
    cache : FeatureCache, optional
        The analysis' feature cache: features it holds are not extracted again.

    Returns
    -------
    PairView
    """
    image_a, image_b = images[i], images[j]
    scores = {name: m.value(i, j) for name, m in matrices.items()}
    metrics = config.similarity.metrics
    # the local map: CW-SSIM's, unless the analysis computed SSIM and not CW-SSIM
    local = _metric(config, "ssim" if "ssim" in metrics and "cw-ssim" not in metrics else "cw-ssim")
    contour = _metric(config, "contour")
    if matched is None:
        matched = explain(image_a, image_b, _metric(config, "sift"), cache=cache)
    traced = explain(image_a, image_b, contour, cache=cache)
    scale = 1.0
    if record_a is not None:
        scale = max(record_a.meta.width, record_a.meta.height) / max(image_a.gray.shape)
    figures = {
        "pair": pair_evidence_figure(
            image_a.id, image_b.id, matched, explain(image_a, image_b, local, cache=cache), scores
        ),
        "contour": contour_evidence_figure(
            image_a.id,
            image_b.id,
            traced,
            pixel_scale=scale,
            tolerance_px=contour.tolerance * max(image_a.gray.shape),
            score=scores.get("contour"),
        ),
    }
    return PairView(image_a.id, image_b.id, scores, matched, traced, figures)
