r"""Chinese Whispers label propagation, vectorised over the edges."""
from __future__ import annotations

import logging

import numpy as np
from torch import Tensor
from tqdm import tqdm

from ltc_pyg.graph.components import relabel_by_first_appearance
from ltc_pyg.graph.transforms import knn_to_edges, symmetrize_max

logger = logging.getLogger(__name__)


def chinese_whispers(neighbor: Tensor, similarity: Tensor, threshold: float,
                     num_iterations: int = 20, update_fraction: float = 0.5,
                     seed: int = 0,
                     progress_bar: bool | None = None) -> np.ndarray:
    r"""Chinese Whispers (`Biemann, 2006 <https://aclanthology.org/
    W06-3812/>`_) on the symmetrised kNN graph cut at ``threshold``.

    Every node starts in its own class. In each iteration a random
    ``update_fraction`` of the nodes adopts, at once, the class with the
    largest summed edge weight among its neighbours (ties broken at
    random). Updating a random part of the nodes instead of all of them
    keeps neighbours from swapping classes back and forth, the failure of
    fully synchronous updates, while each iteration stays one vectorised
    pass over the edges.

    Args:
        neighbor (Tensor): ``[N, k]`` neighbour ids (itself first).
        similarity (Tensor): ``[N, k]`` cosine similarities.
        threshold (float): Keep edges with similarity :math:`\geq` this.
        num_iterations (int, optional): Iterations. (default: ``20``)
        update_fraction (float, optional): Share of nodes updated per
            iteration, in ``(0, 1]``. (default: ``0.5``)
        seed (int, optional): Seed of the node choice and tie breaks.
        progress_bar (bool, optional): Show a progress bar; by default
            shown for more than 100,000 nodes.

    Returns:
        np.ndarray: int64 ``[N]`` labels numbered by first appearance.
    """
    if num_iterations < 0:
        raise ValueError(f'num_iterations must be non-negative (got '
                         f'{num_iterations})')
    if not 0 < update_fraction <= 1:
        raise ValueError(f'update_fraction must be in (0, 1] (got '
                         f'{update_fraction})')
    num_nodes = neighbor.size(0)
    if progress_bar is None:
        progress_bar = num_nodes > 100_000
    edge_index, edge_weight = knn_to_edges(neighbor, similarity, threshold)
    edge_index, edge_weight = symmetrize_max(edge_index, edge_weight,
                                             num_nodes)
    source, target = edge_index[0].numpy(), edge_index[1].numpy()
    weight = edge_weight.numpy().astype(np.float64)
    logger.info('Chinese Whispers on %d edges at similarity >= %g',
                source.size, threshold)
    rng = np.random.default_rng(seed)
    labels = np.arange(num_nodes, dtype=np.int64)
    for _ in tqdm(range(num_iterations), desc='Chinese Whispers',
                  disable=not progress_bar):
        active = rng.random(num_nodes) < update_fraction
        edges = active[target]
        if not edges.any():  # no updated node has a neighbour
            continue
        # Summed weight of each (target, neighbour class) pair.
        keys = target[edges] * num_nodes + labels[source[edges]]
        unique_keys, inverse = np.unique(keys, return_inverse=True)
        votes = np.bincount(inverse, weights=weight[edges],
                            minlength=unique_keys.size)
        node = unique_keys // num_nodes
        # The last of each node's group has the largest vote.
        order = np.lexsort((rng.random(unique_keys.size), votes, node))
        last = np.r_[node[order][1:] != node[order][:-1], True]
        winner = order[last]
        changed = int((labels[node[winner]] != unique_keys[winner]
                       % num_nodes).sum())
        labels[node[winner]] = unique_keys[winner] % num_nodes
        logger.debug('Chinese Whispers: %d nodes changed class', changed)
    return relabel_by_first_appearance(labels)
