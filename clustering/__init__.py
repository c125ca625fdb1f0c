"""Clustering of similarity matrices, choice of k, and validity scores."""

from .api import ClusteringResult, cluster
from .config import SELECTION_CRITERIA, ClusteringConfig
from .evaluate import evaluate_labels, read_labels
from .methods import K_CRITERIA, LINKAGES, METHODS, ClusteringMethod
from .scores import (
    classical_mds,
    derivative_scores,
    euclidean_distances,
    medoids,
    per_image_silhouette,
    score_labels,
)

__all__ = [
    "ClusteringConfig",
    "ClusteringResult",
    "LINKAGES",
    "METHODS",
    "ClusteringMethod",
    "K_CRITERIA",
    "derivative_scores",
    "euclidean_distances",
    "evaluate_labels",
    "read_labels",
    "SELECTION_CRITERIA",
    "classical_mds",
    "cluster",
    "medoids",
    "per_image_silhouette",
    "score_labels",
]
