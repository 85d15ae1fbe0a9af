r"""DBSCAN on the precomputed sparse kNN distance graph."""
from __future__ import annotations

import logging

import numpy as np
from sklearn.cluster import DBSCAN
from torch import Tensor

from ltc_pyg.baselines.knn_graph import knn_matrix

logger = logging.getLogger(__name__)


def knn_dbscan(neighbor: Tensor, similarity: Tensor, eps: float,
               min_samples: int = 1,
               min_similarity: float | None = None) -> np.ndarray:
    r"""DBSCAN (`Ester et al., 1996 <https://dl.acm.org/doi/10.5555/
    3001460.3001507>`_) restricted to the kNN graph: the neighbourhood of
    node :math:`i` is the set of nodes :math:`j` with :math:`j` in
    :math:`i`'s kNN row or :math:`i` in :math:`j`'s, at cosine distance
    :math:`1 - s_{ij} \leq \epsilon` (plus :math:`i` itself), so the cost
    is :math:`O(Nk)` instead of :math:`O(N^2)`. The relation is made
    symmetric (:math:`\max(\mathbf{A}, \mathbf{A}^\top)` of the
    similarities), as DBSCAN needs, so that the clusters do not depend on
    the order of the nodes.

    Args:
        neighbor (Tensor): ``[N, k]`` neighbour ids (itself first).
        similarity (Tensor): ``[N, k]`` cosine similarities.
        eps (float): Neighbourhood radius in cosine distance.
        min_samples (int, optional): Neighbourhood size (itself included)
            that makes a core sample. (default: ``1``: every sample is core
            and the clusters are the components of the ``eps`` graph)
        min_similarity (float, optional): Drops kNN entries below this
            similarity before DBSCAN (the original's ``th``).

    Returns:
        np.ndarray: int64 ``[N]`` labels; ``-1`` marks noise samples.
    """
    if eps < 0:
        raise ValueError(f'eps must be a non-negative distance (got {eps})')
    if min_samples < 1:
        raise ValueError(f'min_samples must be at least 1 (got '
                         f'{min_samples})')
    distance = knn_matrix(neighbor, similarity, min_similarity,
                          symmetric=True)
    distance.data = np.clip(1.0 - distance.data, 0.0, None)
    logger.info('kNN-DBSCAN on %d stored distances (eps=%g, min_samples=%d)',
                distance.nnz, eps, min_samples)
    # scikit-learn refuses eps=0; the smallest positive float keeps
    # 'distance <= 0' (duplicates) as the neighbourhood.
    model = DBSCAN(eps=max(eps, np.finfo(np.float64).tiny),
                   min_samples=min_samples, metric='precomputed')
    return model.fit_predict(distance).astype(np.int64)
