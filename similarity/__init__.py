"""Similarity metrics, the pairwise engine and the similarity-matrix record."""

from .base import Metric
from .config import SimilarityConfig
from .matrix import SimilarityMatrix
from .pairwise import block_tasks, extract_features, pairwise
from .registry import METRICS, get_metric
from .ssim import SSIM

__all__ = [
    "Metric",
    "METRICS",
    "SSIM",
    "SimilarityConfig",
    "SimilarityMatrix",
    "block_tasks",
    "extract_features",
    "get_metric",
    "pairwise",
]
