r"""CDP-style single-model linking: kNN pairs above a similarity threshold,
merged into components of bounded size."""
from __future__ import annotations

import logging

import numpy as np
from torch import Tensor

from ltc_pyg.graph.components import (
    Pool,
    connected_components,
    dynamic_threshold_components,
    relabel_by_first_appearance,
)
from ltc_pyg.graph.transforms import knn_to_edges

logger = logging.getLogger(__name__)


def cdp_link(neighbor: Tensor, similarity: Tensor, threshold: float,
             max_size: int | None = None, step: float = 0.05,
             pool: Pool | None = 'max') -> np.ndarray:
    r"""The single-model linking of CDP (`Zhan et al., 2018
    <https://arxiv.org/abs/1809.01407>`_): keep the kNN pairs with
    similarity :math:`\geq` ``threshold`` and merge them. Without
    ``max_size`` the clusters are the connected components; with it,
    components larger than ``max_size`` are split by raising the threshold
    on their links step by step
    (:func:`~ltc_pyg.graph.components_components`).

    Args:
        neighbor (Tensor): ``[N, k]`` neighbour ids (itself first).
        similarity (Tensor): ``[N, k]`` cosine similarities.
        threshold (float): Smallest linking similarity.
        max_size (int, optional): Largest cluster.
        step (float, optional): Fraction of the gap to 1 added to the
            threshold per splitting round. (default: ``0.05``)
        pool (str, optional): How the two directions of a pair combine.
            (default: ``'max'``)

    Returns:
        np.ndarray: int64 ``[N]`` labels, clusters numbered by first
        appearance, then the nodes without links as singletons.
    """
    num_nodes = neighbor.size(0)
    edge_index, edge_weight = knn_to_edges(neighbor, similarity, threshold)
    logger.info('CDP linking: %d kNN pairs at similarity >= %g',
                edge_index.size(1), threshold)
    if max_size is None:
        return connected_components(edge_index, num_nodes)
    labels = dynamic_threshold_components(edge_index.t().numpy(),
                                          edge_weight.numpy(), num_nodes,
                                          max_size, step, pool)
    return relabel_by_first_appearance(labels)
