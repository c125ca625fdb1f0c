"""Clustering methods as small estimators over the typed :class:`ClusteringConfig`.

Each method is one class that declares what it consumes:

- ``affinity``: the similarity matrix itself (larger = more alike);
- ``distance``: ``1 - similarity`` with a zero diagonal;
- ``features``: one vector per image (Euclidean);

whether it chooses the number of clusters itself, which criteria may choose k
for it, which linkages it accepts, whether it cuts at a similarity threshold,
and whether it has a sparse fit for shortlist mode (only the compared pairs
are edges). The registry :data:`METHODS` is the one list of methods: the
configuration's validation, the CLI's choices and help, the web app's select
box and the documentation's table all read it. Adding a method is one class
here and one registry entry.

The caller converts once (``preprocessing.matrix.similarity_to_distance``) and
hands each method exactly the input it declares; a method given another input
is refused with a message (see :func:`check_input`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import squareform

from preprocessing.errors import ClusteringError

# scikit-learn is imported where a method fits (1.4 s with the SciPy statistics and
# pandas it imports): a command that clusters nothing (--help, a re-run whose
# clustering comes from the cache) does not pay for it
if TYPE_CHECKING:
    from sklearn.cluster import SpectralClustering

    from .config import ClusteringConfig

__all__ = [
    "Input",
    "Fit",
    "ClusteringMethod",
    "METHODS",
    "K_CRITERIA",
    "MATRIX_LINKAGES",
    "FEATURE_ONLY_LINKAGES",
    "LINKAGES",
    "check_input",
    "hierarchy",
    "sparse_graph",
    "PairGraph",
]

Input = Literal["affinity", "distance", "features"]

#: Linkages valid on any distance matrix; the others need Euclidean features.
MATRIX_LINKAGES = ("average", "complete", "single", "weighted")
FEATURE_ONLY_LINKAGES = ("ward", "centroid", "median")
LINKAGES = MATRIX_LINKAGES + FEATURE_ONLY_LINKAGES

#: Criteria that choose k for any method given a k (``derivative`` needs merge heights).
K_CRITERIA = ("silhouette", "davies-bouldin", "calinski-harabasz")

#: Stored distances of a sparse graph are at least this: CSR drops explicit zeros.
_MIN_DISTANCE = 1e-12


@dataclass(frozen=True)
class Fit:
    """Labels from one fit, with the exemplars the method knows (cluster -> image)."""

    labels: np.ndarray
    exemplars: dict[int, int] = field(default_factory=dict)


def hierarchy(data: np.ndarray, kind: Input, method: str) -> np.ndarray:
    """SciPy linkage matrix of a distance matrix (``kind='distance'``) or of features."""
    if kind == "distance":
        if method in FEATURE_ONLY_LINKAGES:
            raise ClusteringError(
                f"{method} linkage needs Euclidean features, not a precomputed distance: "
                "set clustering.features (e.g. mds) or use an average, complete, single or "
                "weighted linkage"
            )
        return linkage(squareform(data, checks=False), method=method)
    return linkage(data, method=method, metric="euclidean")


@dataclass(frozen=True, eq=False)
class PairGraph:
    """The pairs a shortlist compared (input: similarities of those pairs only).

    Attributes
    ----------
    n : int
        Number of images.
    pairs : (m, 2) ndarray of int
        The compared pairs ``(i, j)``, ``i < j``.
    similarity : (m,) ndarray of float
        Their similarities in [0, 1]; every pair not listed is "judged dissimilar"
        (similarity 0, distance 1).
    """

    n: int
    pairs: np.ndarray
    similarity: np.ndarray

    @classmethod
    def from_dense(cls, similarity: np.ndarray, compared: np.ndarray) -> PairGraph:
        """The graph of an n x n similarity matrix's ``compared`` pairs (symmetric)."""
        rows, cols = np.nonzero(np.triu(np.asarray(compared, bool), k=1))
        sims = np.asarray(similarity, np.float64)[rows, cols]
        return cls(len(similarity), np.column_stack([rows, cols]).astype(np.int64), sims)

    def csr(self, kind: str) -> sp.csr_matrix:
        """Both directions of every pair as a CSR matrix of distances (``1 - s``, at least
        1e-12: a stored zero would read as a missing edge) or affinities, columns sorted."""
        rows, cols = self.pairs[:, 0], self.pairs[:, 1]
        sims = self.similarity
        data = sims if kind == "affinity" else np.maximum(1.0 - sims, _MIN_DISTANCE)
        graph = sp.csr_matrix(
            (
                np.concatenate([data, data]),
                (np.concatenate([rows, cols]), np.concatenate([cols, rows])),
            ),
            shape=(self.n, self.n),
        )
        graph.sort_indices()
        return graph

    def dense_distance(self) -> np.ndarray:
        """n x n distances with every pair not compared at 1 (for small sets)."""
        distance = np.ones((self.n, self.n))
        i, j = self.pairs[:, 0], self.pairs[:, 1]
        distance[i, j] = distance[j, i] = 1.0 - self.similarity
        np.fill_diagonal(distance, 0.0)
        return distance


def sparse_graph(similarity: np.ndarray, compared: np.ndarray, *, kind: str) -> sp.csr_matrix:
    """The compared off-diagonal pairs as a CSR matrix of distances or affinities."""
    return PairGraph.from_dense(similarity, compared).csr(kind)


def _chain_components(graph: sp.csr_matrix) -> sp.csr_matrix:
    """Join the graph's components by edges of distance 1 (what a missing pair is)."""
    n_comp, comp = connected_components(graph, directed=False)
    if n_comp <= 1:
        return graph
    firsts = np.array([np.flatnonzero(comp == c)[0] for c in range(n_comp)])
    a, b = firsts[:-1], firsts[1:]
    bridge = sp.csr_matrix(
        (np.ones(2 * len(a)), (np.concatenate([a, b]), np.concatenate([b, a]))),
        shape=graph.shape,
    )
    return (graph + bridge).tocsr()


class ClusteringMethod:
    """One clustering method, configured by a :class:`ClusteringConfig`.

    Class attributes declare the method to the registry's readers:

    Attributes
    ----------
    name : str
    summary : str
        One line for the CLI's help, the web app's caption and the docs.
    consumes : tuple of Input
        The matrix path uses the first of ``affinity`` / ``distance`` listed;
        the features path needs ``features``.
    chooses_k : bool
        Whether it finds the number of clusters itself (else it is given one,
        fixed or chosen by a criterion).
    criteria : tuple of str
        The criteria that may choose its k (empty when it chooses k itself).
    linkages : tuple of str
        Linkages it accepts (empty when it has none).
    cuts_threshold : bool
        Whether it can cut at a similarity threshold instead of a k.
    sparse : bool
        Whether it has a sparse fit (shortlist mode); ``sparse_needs_k`` when
        that fit needs a fixed number of clusters, ``sparse_cut`` when it needs
        a threshold (``clustering.threshold``) to cut at.
    noise : bool
        Whether it may leave images out of every cluster (label -1).
    graph_neighbors : bool
        Whether it reads ``neighbors`` (the nearest-neighbour graph).
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    consumes: ClassVar[tuple[Input, ...]]
    chooses_k: ClassVar[bool] = False
    criteria: ClassVar[tuple[str, ...]] = K_CRITERIA
    linkages: ClassVar[tuple[str, ...]] = ()
    cuts_threshold: ClassVar[bool] = False
    sparse: ClassVar[bool] = False
    sparse_needs_k: ClassVar[bool] = False
    sparse_cut: ClassVar[bool] = False
    noise: ClassVar[bool] = False
    graph_neighbors: ClassVar[bool] = False

    def __init__(self, config: ClusteringConfig, *, random_state: int = 0) -> None:
        self.config = config
        self.random_state = random_state

    @classmethod
    def matrix_input(cls) -> Input | None:
        """What the method consumes of the matrix (``affinity``/``distance``), or None."""
        for kind in cls.consumes:
            if kind in ("affinity", "distance"):
                return kind
        return None

    def fit(self, data: np.ndarray, kind: Input, k: int | None = None) -> Fit:
        """Labels of ``data`` (of the declared ``kind``) with ``k`` clusters, or its own."""
        raise NotImplementedError

    def merge_heights(self, data: np.ndarray, kind: Input) -> np.ndarray | None:
        """The linkage matrix the ``derivative`` criterion reads, if the method has one."""
        return None

    def fit_sparse(self, graph: PairGraph) -> Fit:
        """Labels from the compared pairs only (shortlist mode)."""
        raise ClusteringError(f"{self.name} has no sparse fit")


class Spectral(ClusteringMethod):
    name = "spectral"
    summary = "spectral clustering of the similarity graph (given or chosen k)"
    consumes = ("affinity",)
    sparse = True
    sparse_needs_k = True
    graph_neighbors = True

    def _model(self, k: int) -> SpectralClustering:
        from sklearn.cluster import SpectralClustering

        return SpectralClustering(
            n_clusters=k,
            affinity="precomputed",
            assign_labels="cluster_qr",
            random_state=self.random_state,
        )

    def embedding(self, data: np.ndarray, k: int) -> np.ndarray:
        """The first ``k`` columns of the normalised-Laplacian embedding of ``data``.

        What :class:`sklearn.cluster.SpectralClustering` computes for ``k``
        clusters, but one embedding serves a whole search: with ``n_clusters =
        "auto"`` it is computed once, for the largest k searched, and each k
        reads its leading columns (the same subspace; measured: the same labels
        on every development set of the accuracy benchmark and the samples; the
        fits of a search over k = 2..250 on 1,000 images in 5.7 s instead of 77 s).
        """
        cached = getattr(self, "_maps", None)
        if cached is None or cached[0] is not data or cached[1].shape[1] < k:
            n = len(data)
            wanted = k
            if self.config.n_clusters == "auto":
                wanted = max(k, self.config.k_upper(n))
            from sklearn.manifold import spectral_embedding

            maps = spectral_embedding(
                neighbour_graph(data, self.config.neighbors),
                n_components=min(wanted, n),
                drop_first=False,
                random_state=self.random_state,
            )
            self._maps = (data, maps)
        return self._maps[1][:, :k]

    def fit(self, data: np.ndarray, kind: Input, k: int | None = None) -> Fit:
        if k is None:
            raise ClusteringError("spectral clustering needs a number of clusters")
        return Fit(cluster_qr(self.embedding(data, k)))

    def fit_sparse(self, graph: PairGraph) -> Fit:
        k = int(self.config.n_clusters)
        affinity = graph.csr("affinity") + sp.identity(graph.n, format="csr")
        return Fit(self._model(k).fit_predict(affinity))


def neighbour_graph(affinity: np.ndarray, neighbors: int | None) -> np.ndarray:
    """``affinity`` with only the edges to each image's ``neighbors`` most similar images
    (kept when either end has the other among its neighbours: symmetric); the
    diagonal kept. ``None``, or too few images to drop anything: ``affinity`` itself.

    >>> a = np.array([[1, .9, .2, .1], [.9, 1, .3, .1], [.2, .3, 1, .8], [.1, .1, .8, 1]])
    >>> neighbour_graph(a, 1)
    array([[1. , 0.9, 0. , 0. ],
           [0.9, 1. , 0. , 0. ],
           [0. , 0. , 1. , 0.8],
           [0. , 0. , 0.8, 1. ]])
    """
    n = len(affinity)
    if neighbors is None or neighbors >= n - 1:
        return affinity
    off = np.array(affinity, dtype=np.float64)
    np.fill_diagonal(off, -np.inf)
    # ties broken by index (a stable sort), so the graph does not depend on the platform
    nearest = np.argsort(-off, axis=1, kind="stable")[:, :neighbors]
    keep = np.zeros((n, n), bool)
    keep[np.arange(n)[:, None], nearest] = True
    keep |= keep.T
    np.fill_diagonal(keep, True)
    return np.where(keep, affinity, 0.0)


def cluster_qr(vectors: np.ndarray) -> np.ndarray:
    """Labels from a spectral embedding by column-pivoted QR (Damle, Minden and Ying).

    The k rows that the pivoted QR of ``vectors.T`` picks first are the most
    independent images; the orthogonal map that sends them to the coordinate
    axes (the polar factor of their k x k block) is applied to every row, and
    each image takes the axis it lies closest to. No random start, no
    iterations; invariant to any rotation or sign change of the embedding's
    basis, so only the subspace matters.

    References
    ----------
    A. Damle, V. Minden and L. Ying, "Simple, direct and efficient multi-way
    spectral clustering", Information and Inference 8(1), 181-203, 2019.
    :doi:`10.1093/imaiai/iay008`
    """
    k = vectors.shape[1]
    _, pivots = scipy.linalg.qr(vectors.T, pivoting=True, mode="r")  # Q is not needed
    left, _, right = scipy.linalg.svd(vectors[pivots[:k], :].T)
    return np.abs(vectors @ (left @ right)).argmax(axis=1)


class AffinityPropagationMethod(ClusteringMethod):
    name = "affinity"
    summary = "affinity propagation on the similarities (finds k and an exemplar per cluster)"
    consumes = ("affinity",)
    chooses_k = True
    criteria = ()

    def fit(self, data: np.ndarray, kind: Input, k: int | None = None) -> Fit:
        pref = self.config.preference
        if pref is None:
            off = data[np.triu_indices(len(data), k=1)]
            pref = float(np.median(off)) if off.size else 0.5
        from sklearn.cluster import AffinityPropagation

        model = AffinityPropagation(
            affinity="precomputed",
            preference=pref,
            damping=self.config.damping,
            max_iter=1000,
            convergence_iter=30,
            random_state=self.random_state,
        )
        labels = model.fit_predict(data)
        centres = getattr(model, "cluster_centers_indices_", None)
        exemplars = {}
        if centres is not None and len(centres) and (labels >= 0).any():
            exemplars = {int(labels[c]): int(c) for c in centres}
        return Fit(labels, exemplars)


class Agglomerative(ClusteringMethod):
    name = "agglomerative"
    summary = "agglomerative (hierarchical) clustering of distances or features"
    consumes = ("distance", "features")
    criteria = (*K_CRITERIA, "derivative")
    linkages = LINKAGES
    cuts_threshold = True
    sparse = True
    sparse_cut = True

    def merge_heights(self, data: np.ndarray, kind: Input) -> np.ndarray:
        # one tree serves every k of a search (the data is the same array)
        cached = getattr(self, "_tree", None)
        if cached is None or cached[0] is not data:
            self._tree = (data, hierarchy(data, kind, self.config.linkage))
        return self._tree[1]

    def fit(self, data: np.ndarray, kind: Input, k: int | None = None) -> Fit:
        tree = self.merge_heights(data, kind)
        if k is None:
            assert self.config.threshold is not None
            labels = fcluster(tree, t=1.0 - self.config.threshold, criterion="distance")
        else:
            labels = fcluster(tree, t=k, criterion="maxclust")
        return Fit(np.asarray(labels) - 1)  # SciPy's labels start at 1

    def fit_sparse(self, graph: PairGraph) -> Fit:
        """The dendrogram of the matrix with every pair not compared at distance 1, cut
        at ``1 - threshold``: found from the compared pairs alone
        (:func:`~clustering.sparse_linkage.cut_sparse_linkage`), the same clusters."""
        from .sparse_linkage import SPARSE_LINKAGES, cut_sparse_linkage

        threshold, linkage = self.config.threshold, self.config.linkage
        if threshold is None or linkage not in SPARSE_LINKAGES:
            raise ClusteringError(
                "shortlist mode: agglomerative clustering of the sparse graph needs "
                "clustering.threshold (a cut at a number of clusters needs every pair) and "
                f"an {', '.join(SPARSE_LINKAGES[:-1])} or {SPARSE_LINKAGES[-1]} linkage"
            )
        return Fit(cut_sparse_linkage(graph.csr("distance"), 1.0 - threshold, linkage))


def default_eps(data: np.ndarray, kind: Input, min_samples: int) -> float:
    """1.5 x the median distance to the ``min_samples``-th neighbour, at most the median
    pairwise distance: the scale of a cluster's neighbourhoods with a margin, so that
    the looser half of each group is not cut off as noise (the plain median did that)."""
    if kind == "distance":
        dist = data
    else:
        diff = data[:, None, :] - data[None, :, :]
        dist = np.sqrt((diff**2).sum(axis=2))
    kth = np.sort(dist, axis=1)[:, min(min_samples, len(dist) - 1)]
    cap = float(np.median(dist[np.triu_indices(len(dist), k=1)]))
    return float(max(min(1.5 * np.median(kth), cap), 1e-9))


class _DensityMethod(ClusteringMethod):
    """What DBSCAN and HDBSCAN declare alike: distances or features in, their own number
    of clusters out, points in no dense region left as noise, a sparse (shortlist) fit."""

    consumes = ("distance", "features")
    chooses_k = True
    noise = True
    criteria = ()
    sparse = True

    @staticmethod
    def _metric(kind: Input) -> str:
        return "precomputed" if kind == "distance" else "euclidean"


class DBSCANMethod(_DensityMethod):
    name = "dbscan"
    summary = "DBSCAN on distances or features (finds k; sparse points are noise)"

    def fit(self, data: np.ndarray, kind: Input, k: int | None = None) -> Fit:
        eps = self.config.eps
        if eps is None:
            eps = default_eps(data, kind, self.config.min_samples)
        from sklearn.cluster import DBSCAN

        model = DBSCAN(eps=eps, min_samples=self.config.min_samples, metric=self._metric(kind))
        return Fit(model.fit_predict(data))

    def fit_sparse(self, graph: PairGraph) -> Fit:
        eps = self.config.eps
        if eps is None:
            eps = default_eps(graph.dense_distance(), "distance", self.config.min_samples)
        from sklearn.cluster import DBSCAN

        model = DBSCAN(eps=eps, min_samples=self.config.min_samples, metric="precomputed")
        return Fit(model.fit_predict(graph.csr("distance")))


class HDBSCANMethod(_DensityMethod):
    name = "hdbscan"
    summary = "HDBSCAN on distances or features (finds k; unstable points are noise)"

    def fit(self, data: np.ndarray, kind: Input, k: int | None = None) -> Fit:
        from sklearn.cluster import HDBSCAN

        model = HDBSCAN(
            min_cluster_size=self.config.min_cluster_size,
            min_samples=self.config.min_samples,
            metric=self._metric(kind),
            copy=True,
        )
        return Fit(model.fit_predict(data))

    def fit_sparse(self, graph: PairGraph) -> Fit:
        # scikit-learn's sparse path refuses a disconnected graph: chain the
        # components by edges of distance 1, which is what every missing pair is
        chained = _chain_components(graph.csr("distance"))
        from sklearn.cluster import HDBSCAN

        model = HDBSCAN(
            min_cluster_size=self.config.min_cluster_size,
            min_samples=self.config.min_samples,
            metric="precomputed",
            metric_params={"max_distance": 1.0},
            copy=True,
        )
        return Fit(model.fit_predict(chained))


class KMeansMethod(ClusteringMethod):
    name = "kmeans"
    summary = "k-means on features (classical MDS of the distances unless features are set)"
    consumes = ("features",)

    def fit(self, data: np.ndarray, kind: Input, k: int | None = None) -> Fit:
        assert k is not None
        from sklearn.cluster import KMeans

        model = KMeans(n_clusters=k, n_init=10, random_state=self.random_state)
        return Fit(model.fit_predict(data))


#: The registry: name -> method class, in the order the app offers them.
METHODS: dict[str, type[ClusteringMethod]] = {
    m.name: m
    for m in (
        Spectral,
        AffinityPropagationMethod,
        Agglomerative,
        DBSCANMethod,
        HDBSCANMethod,
        KMeansMethod,
    )
}


def check_input(method: type[ClusteringMethod], kind: Input) -> None:
    """Refuse a method given an input it does not consume.

    Raises
    ------
    ClusteringError
        Naming what the method consumes and what to do.
    """
    if kind not in method.consumes:
        wants = " or ".join(method.consumes)
        hint = (
            "give it per-image features (set clustering.features, e.g. mds, pca or hog)"
            if method.consumes == ("features",)
            else "cluster the similarity matrix (leave clustering.features unset)"
        )
        raise ClusteringError(f"{method.name} consumes {wants}, not {kind}: {hint}")
