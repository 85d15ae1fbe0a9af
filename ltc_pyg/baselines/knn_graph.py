r"""Sparse matrices from the dense ``[N, k]`` kNN arrays, shared by the
baselines that hand a graph to scipy, scikit-learn or Infomap."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from torch import Tensor

from ltc_pyg.graph.transforms import knn_to_edges


def knn_matrix(neighbor: Tensor, similarity: Tensor,
               min_similarity: float | None = None,
               symmetric: bool = False) -> sp.csr_matrix:
    r"""The kNN similarity graph as a sparse matrix, ``A[i, j] = s_ij`` for
    every neighbour ``j`` in row ``i`` (self-loops removed).

    Explicit zero similarities stay stored entries, so that consumers that
    treat stored entries as edges (a precomputed sparse distance graph)
    see them.

    Args:
        neighbor (Tensor): ``[N, k]`` neighbour ids.
        similarity (Tensor): ``[N, k]`` cosine similarities.
        min_similarity (float, optional): Keep entries :math:`\geq` this.
        symmetric (bool, optional): Return :math:`\max(\mathbf{A},
            \mathbf{A}^\top)`. (default: :obj:`False`)

    Returns:
        scipy.sparse.csr_matrix: ``[N, N]`` float64, sorted indices.
    """
    num_nodes = neighbor.size(0)
    edge_index, edge_weight = knn_to_edges(neighbor, similarity,
                                           min_similarity)
    target, source = edge_index[1].numpy(), edge_index[0].numpy()
    weight = edge_weight.numpy().astype(np.float64)
    if symmetric:
        target, source = (np.concatenate([target, source]),
                          np.concatenate([source, target]))
        weight = np.concatenate([weight, weight])
    # Sort by (row, column, weight): the last entry of each cell is its max.
    order = np.lexsort((weight, source, target))
    target, source, weight = target[order], source[order], weight[order]
    last = np.r_[(target[1:] != target[:-1]) | (source[1:] != source[:-1]),
                 True]
    target, source, weight = target[last], source[last], weight[last]
    indptr = np.r_[0, np.cumsum(np.bincount(target, minlength=num_nodes))]
    return sp.csr_matrix((weight, source, indptr), shape=(num_nodes,
                                                          num_nodes))
