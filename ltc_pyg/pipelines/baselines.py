r"""The baseline methods of the original tables, plus Infomap, behind the
:class:`~ltc_pyg.pipelines.methods.ClusteringMethod` contract.

Every method works on the affinity graph's cached kNN arrays (or its
features) and returns one label per node, noise and outliers as
singletons. Parameters given in similarity units (thresholds, ``eps``,
FastHAC's distance, mean-shift's bandwidth) default to a value read from
the kNN graph (:func:`~ltc_pyg.cluster.threshold.graph_threshold`: its
``'flow'`` rule for Infomap and Chinese Whispers, which split communities
themselves, ``'components'`` for the rest, as ``knn-threshold``), so that
no embedding's similarity scale is assumed; ``n_clusters`` defaults to the
number of components of two or more nodes at the ``'components'``
threshold.
"""
from __future__ import annotations

import logging
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from torch import Tensor
from torch_geometric.data import Data

from ltc_pyg.baselines import (
    approx_rank_order,
    cdp_link,
    chinese_whispers,
    fast_hac,
    infomap_clusters,
    kmeans,
    knn_dbscan,
    mean_shift,
    similarity_to_distance,
    spectral,
)
from ltc_pyg.cluster.map_equation import COARSEN_ABOVE
from ltc_pyg.cluster.threshold import graph_threshold
from ltc_pyg.graph.components import (
    connected_components,
    relabel_by_first_appearance,
)
from ltc_pyg.graph.transforms import knn_to_edges
from ltc_pyg.pipelines.methods import ClusteringMethod
from ltc_pyg.pipelines.report import StageTimer

logger = logging.getLogger(__name__)


def _check_optional(name: str, value: float | None, low: float,
                    high: float | None = None) -> None:
    if value is None:
        return
    if value < low or (high is not None and value > high):
        bound = f'[{low}, {high}]' if high is not None else f'>= {low}'
        raise ValueError(f'{name} must be {bound} (got {value})')


class BaselineMethod(ClusteringMethod):
    r"""Shared plumbing of the baselines: the ``k`` cut of the kNN arrays,
    thresholds read from the data when not given (recorded in
    :meth:`describe`), one timed stage, and labels ``0..C-1`` with
    unassigned nodes as singletons."""
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.chosen_: dict[str, float] = {}

    def knn(self, graph: Data) -> tuple[Tensor, Tensor]:
        r"""The first ``params.k`` columns of the graph's kNN arrays."""
        k = getattr(self.params, 'k', None)
        available = graph.knn_neighbor.size(1)
        if k is None:
            return graph.knn_neighbor, graph.knn_similarity
        if k > available:
            raise ValueError(f"'{self.name}' asks for k={k} but the kNN "
                             f'graph has {available} columns; build it '
                             f'with knn.k >= {k}')
        return graph.knn_neighbor[:, :k], graph.knn_similarity[:, :k]

    def threshold(self, graph: Data, value: float | None,
                  name: str = 'threshold',
                  rule: Literal['components', 'flow'] = 'components'
                  ) -> float:
        r"""``value``, or :func:`~ltc_pyg.cluster.threshold.graph_threshold`
        of the graph by ``rule``."""
        if value is None:
            value = graph_threshold(graph.knn_neighbor,
                                    graph.knn_similarity, rule)
            logger.info("Chose %s's threshold %.4f from the kNN similarity "
                        'distribution', self.name, value)
            self.chosen_[name] = value
        return value

    def num_clusters(self, graph: Data, value: int | None) -> int:
        r"""``value``, or the number of components of two or more nodes of
        the kNN graph cut at its ``'components'``
        :func:`~ltc_pyg.cluster.threshold.graph_threshold` (singletons are
        outliers, not clusters to place a centre in)."""
        if value is None:
            threshold = graph_threshold(graph.knn_neighbor,
                                        graph.knn_similarity)
            edge_index, _ = knn_to_edges(graph.knn_neighbor,
                                         graph.knn_similarity, threshold)
            labels = connected_components(edge_index, graph.num_nodes)
            value = max(int((np.bincount(labels) >= 2).sum()), 1)
            logger.info('Chose n_clusters=%d (components of 2+ nodes at '
                        'similarity >= %.4f)', value, threshold)
            self.chosen_['n_clusters'] = value
        return value

    def predict(self, graph: Data,
                timer: StageTimer | None = None) -> np.ndarray:
        timer = timer or StageTimer()
        with timer(self.name):
            labels = self.cluster(graph)
        return relabel_by_first_appearance(labels)

    @abstractmethod
    def cluster(self, graph: Data) -> np.ndarray:
        r"""Labels ``[N]``, ``-1`` for unassigned nodes."""

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        described.update({f'{key}_used': value
                          for key, value in self.chosen_.items()})
        return described


@dataclass(frozen=True)
class KMeansParams:
    r"""Args:
        n_clusters (int, optional): Number of clusters (the original's
            ``ncluster``); by default the number of components of the kNN
            graph at the data's threshold.
        max_iter (int): Iterations. (default: ``100``)
    """
    n_clusters: int | None = None
    max_iter: int = 100

    def __post_init__(self) -> None:
        _check_optional('n_clusters', self.n_clusters, 1)
        _check_optional('max_iter', self.max_iter, 1)


class KMeansMethod(BaselineMethod):
    r"""k-means of the features (:func:`~ltc_pyg.baselines.kmeans`)."""
    name = 'kmeans'
    Params = KMeansParams

    def cluster(self, graph: Data) -> np.ndarray:
        return kmeans(graph.x.numpy(),
                      self.num_clusters(graph, self.params.n_clusters),
                      max_iter=self.params.max_iter, seed=self.seed)


@dataclass(frozen=True)
class MiniBatchKMeansParams:
    r"""Args:
        n_clusters (int, optional): Number of clusters (``ncluster``); by
            default the number of components at the data's threshold.
        batch_size (int): Mini-batch size (``bs``). (default: ``100``)
        max_iter (int): Epochs. (default: ``100``)
    """
    n_clusters: int | None = None
    batch_size: int = 100
    max_iter: int = 100

    def __post_init__(self) -> None:
        _check_optional('n_clusters', self.n_clusters, 1)
        _check_optional('batch_size', self.batch_size, 1)
        _check_optional('max_iter', self.max_iter, 1)


class MiniBatchKMeansMethod(BaselineMethod):
    r"""Mini-batch k-means of the features."""
    name = 'minibatch-kmeans'
    Params = MiniBatchKMeansParams

    def cluster(self, graph: Data) -> np.ndarray:
        return kmeans(graph.x.numpy(),
                      self.num_clusters(graph, self.params.n_clusters),
                      batch_size=self.params.batch_size,
                      max_iter=self.params.max_iter, seed=self.seed)


@dataclass(frozen=True)
class SpectralParams:
    r"""Args:
        n_clusters (int, optional): Number of clusters (``ncluster``); by
            default the number of components at the data's threshold.
        n_components (int, optional): Eigenvectors (at most
            ``n_clusters``; ``n_clusters`` when null). (default: ``100``)
        k (int, optional): kNN columns used (all by default).
        min_similarity (float): Affinities below this are dropped.
            (default: ``0.0``)
        assign_labels (str): ``'kmeans'``, ``'cluster_qr'`` or
            ``'discretize'``. (default: ``'kmeans'``)
    """
    n_clusters: int | None = None
    n_components: int | None = 100
    k: int | None = None
    min_similarity: float = 0.0
    assign_labels: Literal['kmeans', 'cluster_qr',
                           'discretize'] = 'kmeans'

    def __post_init__(self) -> None:
        _check_optional('n_clusters', self.n_clusters, 1)
        _check_optional('n_components', self.n_components, 1)
        _check_optional('k', self.k, 2)
        _check_optional('min_similarity', self.min_similarity, 0.0, 1.0)


class SpectralMethod(BaselineMethod):
    r"""Spectral clustering of the sparse kNN affinity."""
    name = 'spectral'
    reads_features = False
    Params = SpectralParams

    def cluster(self, graph: Data) -> np.ndarray:
        neighbor, similarity = self.knn(graph)
        return spectral(neighbor, similarity,
                        self.num_clusters(graph, self.params.n_clusters),
                        self.params.n_components,
                        self.params.min_similarity,
                        self.params.assign_labels, seed=self.seed)


@dataclass(frozen=True)
class MeanShiftParams:
    r"""Args:
        bandwidth (float, optional): Euclidean kernel radius; by default
            the distance of the data's threshold similarity.
        num_seeds (int, optional): Random start samples (every sample when
            null). (default: ``1000``)
    """
    bandwidth: float | None = None
    num_seeds: int | None = 1000

    def __post_init__(self) -> None:
        if self.bandwidth is not None and self.bandwidth <= 0:
            raise ValueError(f'bandwidth must be positive (got '
                             f'{self.bandwidth})')
        _check_optional('num_seeds', self.num_seeds, 1)


class MeanShiftMethod(BaselineMethod):
    r"""Mean-shift of the features."""
    name = 'meanshift'
    Params = MeanShiftParams

    def cluster(self, graph: Data) -> np.ndarray:
        bandwidth = self.params.bandwidth
        if bandwidth is None:
            bandwidth = float(similarity_to_distance(
                self.threshold(graph, None)))
            self.chosen_['bandwidth'] = bandwidth
        return mean_shift(graph.x.numpy(), bandwidth, self.params.num_seeds,
                          seed=self.seed)


@dataclass(frozen=True)
class KNNDBSCANParams:
    r"""Args:
        k (int, optional): kNN columns used (``k``; all by default).
        min_similarity (float, optional): Drop kNN entries below this
            similarity (the original's ``th``).
        eps (float, optional): Radius in cosine distance; by default one
            minus the data's threshold.
        min_samples (int): Core-sample neighbourhood size (``min``).
            (default: ``1``)
    """
    k: int | None = None
    min_similarity: float | None = None
    eps: float | None = None
    min_samples: int = 1

    def __post_init__(self) -> None:
        _check_optional('k', self.k, 1)
        _check_optional('min_similarity', self.min_similarity, -1.0, 1.0)
        _check_optional('eps', self.eps, 0.0, 2.0)
        _check_optional('min_samples', self.min_samples, 1)


class KNNDBSCANMethod(BaselineMethod):
    r"""DBSCAN on the sparse kNN distance graph; noise as singletons."""
    name = 'knn-dbscan'
    reads_features = False
    Params = KNNDBSCANParams

    def cluster(self, graph: Data) -> np.ndarray:
        eps = self.params.eps
        if eps is None:
            eps = 1.0 - self.threshold(graph, None)
            self.chosen_['eps'] = eps
        neighbor, similarity = self.knn(graph)
        return knn_dbscan(neighbor, similarity, eps, self.params.min_samples,
                          self.params.min_similarity)


@dataclass(frozen=True)
class FastHACParams:
    r"""Args:
        distance (float, optional): Largest Euclidean merge distance
            (``dist``); by default the distance of the data's threshold
            similarity.
        linkage (str): ``'single'`` or ``'average'``. (default:
            ``'single'``)
        k (int, optional): kNN columns used (all by default).
        dense (bool): Exact HAC over all pairs (quadratic memory).
            (default: :obj:`False`)
        max_memory_gb (float): Refuse dense HAC above this. (default:
            ``4.0``)
    """
    distance: float | None = None
    linkage: Literal['single', 'average'] = 'single'
    k: int | None = None
    dense: bool = False
    max_memory_gb: float = 4.0

    def __post_init__(self) -> None:
        _check_optional('distance', self.distance, 0.0, 2.0)
        _check_optional('k', self.k, 1)
        if self.linkage not in ('single', 'average'):
            raise ValueError(f"linkage must be 'single' or 'average' (got "
                             f"'{self.linkage}')")


class FastHACMethod(BaselineMethod):
    r"""Agglomerative clustering cut at a distance, sparse on the kNN graph
    unless ``dense``."""
    name = 'fast-hac'
    Params = FastHACParams

    def cluster(self, graph: Data) -> np.ndarray:
        distance = self.params.distance
        if distance is None:
            distance = float(similarity_to_distance(
                self.threshold(graph, None)))
            self.chosen_['distance'] = distance
        neighbor, similarity = self.knn(graph)
        return fast_hac(graph.x.numpy(), neighbor, similarity, distance,
                        self.params.linkage, self.params.dense,
                        self.params.max_memory_gb)


@dataclass(frozen=True)
class AROParams:
    r"""Args:
        k (int, optional): Neighbour-list length (``k``; all by default).
        max_distance (float): Largest linking rank-order distance
            (``th``; a rank distance, not a similarity, so threshold sweeps
            leave it alone). (default: ``0.0``)
        batch_size (int): Rows per vectorised batch. (default: ``512``)
    """
    k: int | None = None
    max_distance: float = 0.0
    batch_size: int = 512

    def __post_init__(self) -> None:
        _check_optional('k', self.k, 2)
        _check_optional('max_distance', self.max_distance, 0.0)
        _check_optional('batch_size', self.batch_size, 1)


class AROMethod(BaselineMethod):
    r"""Approximate rank-order clustering."""
    name = 'aro'
    reads_features = False
    Params = AROParams

    def cluster(self, graph: Data) -> np.ndarray:
        neighbor, _ = self.knn(graph)
        return approx_rank_order(neighbor, self.params.max_distance,
                                 self.params.batch_size, self.progress_bar)


@dataclass(frozen=True)
class ChineseWhispersParams:
    r"""Args:
        k (int, optional): kNN columns used (``k``; all by default).
        threshold (float, optional): Keep edges with similarity
            :math:`\geq` this (``th``); by default the data's threshold.
        num_iterations (int): Iterations (``iters``). (default: ``20``)
        update_fraction (float): Share of nodes updated per iteration.
            (default: ``0.5``)
    """
    k: int | None = None
    threshold: float | None = None
    num_iterations: int = 20
    update_fraction: float = 0.5

    def __post_init__(self) -> None:
        _check_optional('k', self.k, 1)
        _check_optional('threshold', self.threshold, -1.0, 1.0)
        _check_optional('num_iterations', self.num_iterations, 0)
        _check_optional('update_fraction', self.update_fraction, 1e-9, 1.0)


class ChineseWhispersMethod(BaselineMethod):
    r"""Chinese Whispers on the thresholded kNN graph."""
    name = 'chinese-whispers'
    reads_features = False
    Params = ChineseWhispersParams

    def cluster(self, graph: Data) -> np.ndarray:
        neighbor, similarity = self.knn(graph)
        return chinese_whispers(
            neighbor, similarity, self.threshold(graph,
                                                 self.params.threshold,
                                                 rule='flow'),
            self.params.num_iterations, self.params.update_fraction,
            seed=self.seed, progress_bar=self.progress_bar)


@dataclass(frozen=True)
class CDPParams:
    r"""Args:
        k (int, optional): kNN columns used (``k``; all by default).
        threshold (float, optional): Smallest linking similarity (``th``);
            by default the data's threshold.
        max_size (int, optional): Largest cluster (``maxsz``); unbounded
            by default.
        step (float): Threshold step of the size-capped merge. (default:
            ``0.05``)
        pool (str, optional): How the two directions of a pair combine:
            ``'avg'``, ``'max'`` or ``'last'``. (default: ``'max'``)
    """
    k: int | None = None
    threshold: float | None = None
    max_size: int | None = None
    step: float = 0.05
    pool: Literal['avg', 'max', 'last'] = 'max'

    def __post_init__(self) -> None:
        _check_optional('k', self.k, 1)
        _check_optional('threshold', self.threshold, -1.0, 1.0)
        _check_optional('max_size', self.max_size, 1)
        _check_optional('step', self.step, 1e-9, 1.0)


class CDPMethod(BaselineMethod):
    r"""CDP-style single-model linking with an optional size cap."""
    name = 'cdp'
    reads_features = False
    Params = CDPParams

    def cluster(self, graph: Data) -> np.ndarray:
        neighbor, similarity = self.knn(graph)
        return cdp_link(neighbor, similarity,
                        self.threshold(graph, self.params.threshold),
                        self.params.max_size, self.params.step,
                        self.params.pool)


@dataclass(frozen=True)
class InfomapParams:
    r"""Args:
        k (int, optional): kNN columns used (all by default).
        threshold (float, optional): Keep edges with similarity
            :math:`\geq` this; by default the data's threshold.
        temperature (float, optional): Softmax temperature of FaceMap's
            transition probabilities; raw similarities when null.
        prune_fraction (float): Share of lowest-density nodes made
            singletons (FaceMap's outliers). (default: ``0.0``)
        num_trials (int): Infomap trials. (default: ``1``)
        coarsen_above (int): With more links than this, Infomap walks
            groups of nodes, each node joined to its strongest neighbour
            where the two link both ways
            (:func:`~ltc_pyg.cluster.map_equation.map_equation_clusters`).
            (default: ``100_000_000``, ~2M nodes at the automatic threshold)
    """
    k: int | None = None
    threshold: float | None = None
    temperature: float | None = None
    prune_fraction: float = 0.0
    num_trials: int = 1
    coarsen_above: int = COARSEN_ABOVE

    def __post_init__(self) -> None:
        _check_optional('k', self.k, 2)
        _check_optional('threshold', self.threshold, -1.0, 1.0)
        if self.temperature is not None and self.temperature <= 0:
            raise ValueError(f'temperature must be positive (got '
                             f'{self.temperature})')
        if not 0 <= self.prune_fraction < 1:
            raise ValueError(f'prune_fraction must be in [0, 1) (got '
                             f'{self.prune_fraction})')
        _check_optional('num_trials', self.num_trials, 1)
        _check_optional('coarsen_above', self.coarsen_above, 0)


class InfomapMethod(BaselineMethod):
    r"""Infomap on the thresholded kNN graph (FaceMap-style options)."""
    name = 'infomap'
    reads_features = False
    Params = InfomapParams

    def cluster(self, graph: Data) -> np.ndarray:
        neighbor, similarity = self.knn(graph)
        return infomap_clusters(
            neighbor, similarity,
            self.threshold(graph, self.params.threshold, rule='flow'),
            self.params.temperature, self.params.prune_fraction,
            self.params.num_trials, seed=self.seed,
            coarsen_above=self.params.coarsen_above)
