"""The evidence figures of one pair, as the report, compare, query and the web app show them."""

from __future__ import annotations

from matplotlib.figure import Figure

from preprocessing import ImageRecord
from preprocessing.work import WorkImage
from similarity import PairEvidence, SimilarityConfig, explain, get_metric

from .plots.evidence import contour_evidence_figure, pair_evidence_figure

__all__ = ["pair_figures"]


def _metric(config: SimilarityConfig, name: str):  # noqa: ANN202 - a Metric
    """The configured metric when the analysis computed it, else the registry's."""
    return config.metric(name) if name in config.metrics else get_metric(name)


def pair_figures(
    image_a: WorkImage,
    image_b: WorkImage,
    config: SimilarityConfig,
    scores: dict[str, float],
    *,
    record_a: ImageRecord | None = None,
    matched: PairEvidence | None = None,
) -> dict[str, Figure]:
    """The pair-evidence figure and the contour (tracing) figure of two work images.

    Parameters
    ----------
    image_a, image_b : WorkImage
    config : SimilarityConfig
        The analysis' similarity settings: metrics it computed are explained
        with its parameters, so the evidence agrees with the matrix.
    scores : dict
        Every metric's similarity of the pair (printed on the figure).
    record_a : ImageRecord, optional
        A's record: deviations are then given in pixels of A's original.
    matched : PairEvidence, optional
        The pair's SIFT evidence when the caller already has it (not computed again).

    Returns
    -------
    dict
        ``{"pair": Figure, "contour": Figure}``.
    """
    # the local map: CW-SSIM's, unless the analysis computed SSIM and not CW-SSIM
    only_ssim = "ssim" in config.metrics and "cw-ssim" not in config.metrics
    local = _metric(config, "ssim" if only_ssim else "cw-ssim")
    contour = _metric(config, "contour")
    if matched is None:
        matched = explain(image_a, image_b, _metric(config, "sift"))
    figures = {
        "pair": pair_evidence_figure(
            image_a.id, image_b.id, matched, explain(image_a, image_b, local), scores
        )
    }
    scale = 1.0
    if record_a is not None:
        side = max(image_a.gray.shape)
        scale = max(record_a.meta.width, record_a.meta.height) / side
    traced = explain(image_a, image_b, contour)
    figures["contour"] = contour_evidence_figure(
        image_a.id,
        image_b.id,
        traced,
        pixel_scale=scale,
        tolerance_px=contour.tolerance * max(image_a.gray.shape),  # type: ignore[attr-defined]
    )
    return figures
