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
from matplotlib.figure import Figure

from preprocessing import ImageRecord
from preprocessing.work import WorkImage
from similarity import PairEvidence, SimilarityMatrix, explain
from similarity.registry import seeded_metric

from .config import AnalysisConfig
from .plots.evidence import contour_evidence_figure, pair_evidence_figure

__all__ = ["PairView", "pair_evidence", "closer_than"]


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
    figures : dict of str to Figure
        ``pair`` (matches, local map, overlay, difference) and ``contour``.
    """

    id_a: str
    id_b: str
    scores: dict[str, float]
    matched: PairEvidence
    traced: PairEvidence
    figures: dict[str, Figure]


def _metric(config: AnalysisConfig, name: str):  # noqa: ANN202 - a Metric
    """The configured, seeded metric when the analysis computed it, else the registry's
    (seeded with the run's random_state)."""
    if name in config.similarity.metrics:
        return config.metric(name)
    return seeded_metric(name, config.random_state)


def pair_evidence(
    images: Sequence[WorkImage],
    matrices: Mapping[str, SimilarityMatrix],
    config: AnalysisConfig,
    i: int,
    j: int,
    *,
    record_a: ImageRecord | None = None,
    matched: PairEvidence | None = None,
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

    Returns
    -------
    PairView
    """
    image_a, image_b = images[i], images[j]
    scores = {name: float(m.values[i, j]) for name, m in matrices.items()}
    metrics = config.similarity.metrics
    # the local map: CW-SSIM's, unless the analysis computed SSIM and not CW-SSIM
    local = _metric(config, "ssim" if "ssim" in metrics and "cw-ssim" not in metrics else "cw-ssim")
    contour = _metric(config, "contour")
    if matched is None:
        matched = explain(image_a, image_b, _metric(config, "sift"))
    traced = explain(image_a, image_b, contour)
    scale = 1.0
    if record_a is not None:
        scale = max(record_a.meta.width, record_a.meta.height) / max(image_a.gray.shape)
    figures = {
        "pair": pair_evidence_figure(
            image_a.id, image_b.id, matched, explain(image_a, image_b, local), scores
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
