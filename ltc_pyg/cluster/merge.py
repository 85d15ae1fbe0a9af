r"""Sparse, vectorised merging of links into cluster labels.

Every learned and baseline method ends here: a set of links (edges) between
samples becomes one label per sample through connected components
(:func:`~ltc_pyg.graph.components.connected_components`), never a Python
union-find over nodes.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from torch import Tensor

from ltc_pyg.graph.components import (
    as_numpy,
    connected_components,
    relabel_by_first_appearance,
)


def threshold_links(edge_index: Tensor, edge_weight: Tensor, num_nodes: int,
                    threshold: float) -> np.ndarray:
    r"""Keeps the links with weight :math:`\geq` ``threshold`` and returns
    the labels of their connected components."""
    keep = edge_weight >= threshold
    return connected_components(edge_index[:, keep], num_nodes)


def merge_linked_clusters(labels: np.ndarray | Tensor,
                          edge_index: np.ndarray | Tensor,
                          edge_weight: np.ndarray | Tensor,
                          min_mass: float) -> np.ndarray:
    r"""Joins the clusters that the links between them hold together.

    The link mass between clusters :math:`A \neq B` is the weight of the
    links joining them, in either direction, per node of the smaller one,

    .. math::
        m(A, B) = \frac{\sum_{(i, j):\, \{c_i, c_j\} = \{A, B\}} w_{ij}}
        {\min(|A|, |B|)},

    and every pair with :math:`m(A, B) \geq` ``min_mass`` is joined
    (through connected components, so joins chain). It recalls what a
    module-level partition split: the two halves of a large identity that
    the map equation codes as two modules are still held together by many
    links per node, while a stray link between two identities weighs
    :math:`1 / \min(|A|, |B|)` at most.

    Args:
        labels (np.ndarray or Tensor): ``[N]`` cluster labels
            (:math:`\geq 0`).
        edge_index (np.ndarray or Tensor): ``[2, E]`` links.
        edge_weight (np.ndarray or Tensor): ``[E]`` non-negative weights.
        min_mass (float): Link mass per node at which clusters join.

    Returns:
        np.ndarray: int64 ``[N]`` labels numbered by first appearance.
    """
    labels = as_numpy(labels).astype(np.int64)
    edge_index, edge_weight = as_numpy(edge_index), as_numpy(edge_weight)
    if labels.size and labels.min() < 0:
        raise ValueError('merge_linked_clusters needs every node labelled '
                         '(relabel_by_first_appearance makes singletons of '
                         'negative labels)')
    if edge_weight.shape != (edge_index.shape[1],):
        raise ValueError(f'edge_weight has shape {edge_weight.shape}, '
                         f'expected ({edge_index.shape[1]},)')
    if not min_mass > 0:
        raise ValueError(f'min_mass must be positive (got {min_mass})')
    num_clusters = int(labels.max()) + 1 if labels.size else 0
    source, target = labels[edge_index[0]], labels[edge_index[1]]
    cross = source != target
    low = np.minimum(source, target)[cross]
    high = np.maximum(source, target)[cross]
    mass = sp.coo_matrix(
        (edge_weight[cross].astype(np.float64), (low, high)),
        shape=(num_clusters, num_clusters)).tocsr().tocoo()
    size = np.bincount(labels, minlength=num_clusters)
    joined = mass.data / np.minimum(size[mass.row], size[mass.col]) >= min_mass
    links = np.stack([mass.row[joined], mass.col[joined]])
    return relabel_by_first_appearance(
        connected_components(links, num_clusters)[labels])
