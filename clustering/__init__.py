"""Clustering of similarity matrices, choice of k, and validity scores."""

from .api import ClusteringResult, cluster
from .config import LINKAGES, SELECTION_CRITERIA, ClusteringConfig
from .methods import METHODS, MatrixMethod
from .scores import classical_mds, medoids, per_image_silhouette, score_labels

__all__ = [
    "ClusteringConfig",
    "ClusteringResult",
    "LINKAGES",
    "METHODS",
    "MatrixMethod",
    "SELECTION_CRITERIA",
    "classical_mds",
    "cluster",
    "medoids",
    "per_image_silhouette",
    "score_labels",
]
