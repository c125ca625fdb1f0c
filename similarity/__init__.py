"""Similarity metrics, the pairwise engine and the similarity-matrix record."""

from .base import Metric
from .cache import FeatureCache, default_cache_dir
from .config import SimilarityConfig
from .evidence import PairEvidence, explain
from .fusion import calibrate, fuse
from .matrix import ShortlistMatrix, SimilarityMatrix
from .pairwise import block_tasks, extract_features, pairwise
from .registry import METRICS, READY_METRICS, get_metric
from .ssim import SSIM

__all__ = [
    "READY_METRICS",
    "FeatureCache",
    "PairEvidence",
    "calibrate",
    "default_cache_dir",
    "explain",
    "fuse",
    "Metric",
    "METRICS",
    "SSIM",
    "SimilarityConfig",
    "ShortlistMatrix",
    "SimilarityMatrix",
    "block_tasks",
    "extract_features",
    "get_metric",
    "pairwise",
]
