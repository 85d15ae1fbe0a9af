r"""Hierarchical agglomerative clustering cut at a distance threshold
(the original tables' "FastHAC"), sparse on the kNN graph where possible."""
from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import scipy.sparse as sp
from scipy.cluster.hierarchy import fcluster
from scipy.cluster.hierarchy import linkage as dense_linkage
from sklearn.cluster import AgglomerativeClustering
from torch import Tensor

from ltc_pyg.baselines.knn_graph import knn_matrix
from ltc_pyg.graph.components import connected_components
from ltc_pyg.graph.transforms import knn_to_edges

logger = logging.getLogger(__name__)

Linkage = Literal['single', 'average']


def similarity_to_distance(similarity: float | np.ndarray
                           ) -> float | np.ndarray:
    r"""Euclidean distance of unit vectors with cosine similarity ``s``,
    :math:`\sqrt{2 - 2s}` (the distance FastHAC thresholds)."""
    return np.sqrt(np.clip(2.0 - 2.0 * np.asarray(similarity), 0.0, None))


def dense_hac_memory_gb(num_nodes: int) -> float:
    r"""Memory of the condensed float64 distance matrix that exact dense
    HAC needs, :math:`8 N (N - 1) / 2` bytes, in GiB."""
    return 8 * num_nodes * (num_nodes - 1) / 2 / 1024**3


def fast_hac(x: np.ndarray, neighbor: Tensor, similarity: Tensor,
             distance_threshold: float, linkage: Linkage = 'single',
             dense: bool = False, max_memory_gb: float = 4.0) -> np.ndarray:
    r"""Agglomerative clustering of unit features, merging while the
    Euclidean linkage distance is :math:`\leq` ``distance_threshold``.

    * ``'single'`` (sparse): the connected components of the kNN edges of
      distance :math:`\leq` the threshold. This is exact single linkage on
      the kNN graph; it equals dense single linkage when the kNN lists hold
      every pair closer than the threshold.
    * ``'average'`` (sparse): scikit-learn's average linkage with the
      symmetrised kNN graph as connectivity (only kNN neighbours merge).
    * ``dense=True``: exact linkage over all pairs (scipy), which needs
      :math:`8 N (N - 1) / 2` bytes; refused above ``max_memory_gb``.

    Args:
        x (np.ndarray): ``[N, D]`` unit features.
        neighbor (Tensor): ``[N, k]`` neighbour ids (itself first).
        similarity (Tensor): ``[N, k]`` cosine similarities.
        distance_threshold (float): Largest merge distance (Euclidean; see
            :func:`similarity_to_distance`).
        linkage (str, optional): ``'single'`` or ``'average'``.
            (default: ``'single'``)
        dense (bool, optional): Exact HAC over all pairs.
            (default: :obj:`False`)
        max_memory_gb (float, optional): Refuse dense HAC above this.
            (default: ``4.0``)

    Returns:
        np.ndarray: int64 ``[N]`` labels.
    """
    if linkage not in ('single', 'average'):
        raise ValueError(f"linkage must be 'single' or 'average' (got "
                         f"'{linkage}')")
    if distance_threshold < 0:
        raise ValueError(f'distance_threshold must be non-negative (got '
                         f'{distance_threshold})')
    num_nodes = x.shape[0]
    if dense:
        memory = dense_hac_memory_gb(num_nodes)
        if memory > max_memory_gb:
            raise ValueError(
                f'Dense HAC of {num_nodes} samples needs {memory:.1f} GiB '
                f'for its distance matrix (limit {max_memory_gb} GiB); use '
                f'the sparse kNN version (dense=False)')
        tree = dense_linkage(x.astype(np.float64), method=linkage,
                             metric='euclidean')
        return fcluster(tree, distance_threshold,
                        criterion='distance').astype(np.int64) - 1
    # Distance <= t is similarity >= 1 - t^2 / 2 for unit vectors.
    min_similarity = 1.0 - distance_threshold**2 / 2
    if linkage == 'single':
        edge_index, _ = knn_to_edges(neighbor, similarity, min_similarity)
        return connected_components(edge_index, num_nodes)
    connectivity = knn_matrix(neighbor, similarity, symmetric=True)
    connectivity = sp.csr_matrix(
        (np.ones(connectivity.nnz), connectivity.indices,
         connectivity.indptr), shape=connectivity.shape)
    logger.info('Average-linkage HAC over %d kNN links', connectivity.nnz)
    model = AgglomerativeClustering(n_clusters=None, linkage='average',
                                    connectivity=connectivity,
                                    distance_threshold=distance_threshold)
    return model.fit_predict(x).astype(np.int64)
