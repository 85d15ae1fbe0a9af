r"""Sparse, vectorised merging of links into cluster labels.

Every learned and baseline method ends here: a set of links (edges) between
samples becomes one label per sample through connected components
(:func:`scipy.sparse.csgraph.connected_components`), never a Python
union-find over nodes.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components as _components
from torch import Tensor


def _to_numpy(array: np.ndarray | Tensor) -> np.ndarray:
    if isinstance(array, Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


def connected_components(edge_index: np.ndarray | Tensor,
                         num_nodes: int) -> np.ndarray:
    r"""Labels the weakly connected components of a graph.

    Args:
        edge_index (np.ndarray or Tensor): ``[2, E]`` links (direction is
            ignored).
        num_nodes (int): ``N``; nodes without links become singletons.

    Returns:
        np.ndarray: int64 ``[N]`` labels ``0..C-1``, numbered by first
        appearance in node order (see :func:`relabel_by_first_appearance`).
    """
    edge_index = _to_numpy(edge_index)
    if edge_index.ndim != 2 or edge_index.shape[0] != 2:
        raise ValueError(f'Expected edge_index of shape [2, num_edges] '
                         f'(got {edge_index.shape})')
    if edge_index.size and (edge_index.min() < 0
                            or edge_index.max() >= num_nodes):
        raise ValueError(f'edge_index has ids in [{edge_index.min()}, '
                         f'{edge_index.max()}], outside [0, {num_nodes - 1}]')
    graph = sp.coo_matrix(
        (np.ones(edge_index.shape[1], dtype=np.int8),
         (edge_index[0], edge_index[1])), shape=(num_nodes, num_nodes)).tocsr()
    _, labels = _components(graph, directed=True, connection='weak')
    return relabel_by_first_appearance(labels)


def relabel_by_first_appearance(labels: np.ndarray | Tensor) -> np.ndarray:
    r"""Renumbers labels ``0..C-1`` in order of first appearance, the
    canonical numbering of the original ``write_meta``. Negative labels
    (unassigned) become new singleton clusters, numbered after the others
    in node order."""
    labels = _to_numpy(labels).astype(np.int64)
    assigned = labels >= 0
    _, first, inverse = np.unique(labels[assigned], return_index=True,
                                  return_inverse=True)
    rank = np.empty_like(first)
    rank[np.argsort(first, kind='stable')] = np.arange(first.size)
    result = np.empty_like(labels)
    result[assigned] = rank[inverse.reshape(-1)]
    result[~assigned] = first.size + np.arange(int((~assigned).sum()))
    return result


def threshold_links(edge_index: Tensor, edge_weight: Tensor, num_nodes: int,
                    threshold: float) -> np.ndarray:
    r"""Keeps the links with weight :math:`\geq` ``threshold`` and returns
    the labels of their connected components."""
    keep = edge_weight >= threshold
    return connected_components(edge_index[:, keep], num_nodes)
