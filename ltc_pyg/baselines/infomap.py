r"""Infomap (map equation) clustering of the thresholded kNN graph, with
FaceMap-style transition probabilities and low-density outlier pruning."""
from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor

from ltc_pyg.cluster.map_equation import (
    COARSEN_ABOVE,
    knn_map_equation_clusters,
)
from ltc_pyg.graph.components import relabel_by_first_appearance

logger = logging.getLogger(__name__)


def knn_density(similarity: Tensor) -> Tensor:
    r"""The density of each node, its mean similarity to its ``k - 1``
    nearest other nodes (column 0, the node itself, is left out).

    Shapes:
        - **input:** ``similarity`` :math:`(N, k)`, ``k >= 2``
        - **output:** :math:`(N)`
    """
    if similarity.size(1) < 2:
        raise ValueError(f'The density needs at least one neighbour per '
                         f'row (got k={similarity.size(1)})')
    return similarity[:, 1:].mean(dim=1)


def infomap_clusters(neighbor: Tensor, similarity: Tensor,
                     threshold: float | None = None,
                     temperature: float | None = None,
                     prune_fraction: float = 0.0, num_trials: int = 1,
                     seed: int = 0, coarsen_above: int = COARSEN_ABOVE
                     ) -> np.ndarray:
    r"""Two-level Infomap
    (:func:`~ltc_pyg.cluster.map_equation.knn_map_equation_clusters`) on
    the directed kNN graph, the unsupervised face clustering of FaceMap
    (`Yu et al., 2022 <https://arxiv.org/abs/2203.10090>`_).

    The walker moves from node :math:`i` along its kept kNN edges. With a
    ``temperature`` :math:`\tau`, the transition probabilities are
    :math:`p_{ij} = \mathrm{softmax}_j(s_{ij} / \tau)` over :math:`i`'s
    kept neighbours (FaceMap); otherwise the raw similarities are the link
    weights, and links of similarity :math:`\leq 0` are dropped (Infomap
    takes no negative weights). With ``prune_fraction`` :math:`> 0`, that
    share of nodes with the lowest density (:func:`knn_density`) loses its
    edges and becomes singletons (FaceMap's outlier removal).

    Args:
        neighbor (Tensor): ``[N, k]`` neighbour ids (itself first).
        similarity (Tensor): ``[N, k]`` cosine similarities.
        threshold (float, optional): Keep edges with similarity
            :math:`\geq` this.
        temperature (float, optional): Softmax temperature of the
            transition probabilities.
        prune_fraction (float, optional): Share of lowest-density nodes
            made singletons, in ``[0, 1)``. (default: ``0.0``)
        num_trials (int, optional): Infomap trials; the best is kept.
            (default: ``1``)
        seed (int, optional): Infomap's seed.
        coarsen_above (int, optional): See
            :func:`~ltc_pyg.cluster.map_equation.map_equation_clusters`.

    Returns:
        np.ndarray: int64 ``[N]`` labels numbered by first appearance
        (pruned and unlinked nodes are singletons).
    """
    if temperature is not None and temperature <= 0:
        raise ValueError(f'temperature must be positive (got {temperature})')
    if not 0 <= prune_fraction < 1:
        raise ValueError(f'prune_fraction must be in [0, 1) (got '
                         f'{prune_fraction})')
    num_nodes = neighbor.size(0)
    keep = neighbor != torch.arange(num_nodes).view(-1, 1)  # no self-links
    if threshold is not None:
        keep &= similarity >= threshold
    if prune_fraction > 0:
        density = knn_density(similarity)
        num_pruned = int(prune_fraction * num_nodes)
        pruned = torch.zeros(num_nodes, dtype=torch.bool)
        pruned[density.argsort()[:num_pruned]] = True
        keep &= ~pruned.view(-1, 1) & ~pruned[neighbor]
        logger.info('Pruned the %d lowest-density nodes (density < %.4f)',
                    num_pruned, float(density[pruned].max()) if num_pruned
                    else float('nan'))
    if temperature is None:
        keep &= similarity > 0
        weight = similarity
    else:  # a softmax over each row's kept neighbours
        weight = torch.softmax(
            (similarity.float() / temperature).masked_fill(~keep,
                                                           float('-inf')),
            dim=1).nan_to_num_(0.0)  # rows with no link
    labels = knn_map_equation_clusters(neighbor, weight, keep,
                                       num_trials=num_trials, seed=seed,
                                       coarsen_above=coarsen_above)
    if prune_fraction > 0:
        labels[pruned.numpy()] = -1
    return relabel_by_first_appearance(labels)
