r"""Approximate rank-order clustering, vectorised over the ``[N, k]``
neighbour lists."""
from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from ltc_pyg.graph.components import connected_components

logger = logging.getLogger(__name__)


def rank_order_distance(neighbor: Tensor, batch_size: int = 512,
                        progress_bar: bool | None = None) -> Tensor:
    r"""The approximate rank-order distance (`Otto et al., 2018
    <https://arxiv.org/abs/1604.00989>`_) between every node and each of its
    kNN neighbours.

    With :math:`O_a(i)` the :math:`i`-th entry of :math:`a`'s list
    (position 0 is :math:`a` itself), :math:`O_a(b)` the position of
    :math:`b` in it (:math:`k` when absent) and :math:`I_b(x) = 0` if
    :math:`x` is in :math:`b`'s list and 1 otherwise,

    .. math::
        d(a, b) = \sum_{i=0}^{\min(O_a(b), k - 1)} I_b(O_a(i)), \qquad
        D(a, b) = \frac{d(a, b) + d(b, a)}{\min(O_a(b), O_b(a))}.

    Args:
        neighbor (Tensor): ``[N, k]`` neighbour ids, itself first, sorted
            by decreasing similarity.
        batch_size (int, optional): Rows per batch; memory is about
            ``batch_size * (2 * N + 30 * k**2)`` bytes. (default: ``512``)
        progress_bar (bool, optional): Show a progress bar; by default
            shown for more than 100,000 nodes.

    Returns:
        Tensor: float32 ``[N, k]``, ``D(i, neighbor[i, p])``; ``inf`` where
        ``neighbor[i, p] == i``.
    """
    num_nodes, k = neighbor.shape
    if k > 2**15:
        raise ValueError(f'Rank order supports k <= {2**15} (got {k})')
    if progress_bar is None:
        progress_bar = num_nodes > 100_000
    neighbor = neighbor.long()
    distance = torch.empty(num_nodes, k)
    position = torch.arange(k)
    # rank[r, x]: position of node x in the list of the batch's r-th row,
    # -1 if absent. Entries are set and reset per batch: O(batch * k).
    rank = torch.full((min(batch_size, num_nodes), num_nodes), -1,
                      dtype=torch.int16)
    for start in tqdm(range(0, num_nodes, batch_size), desc='rank order',
                      disable=not progress_bar):
        rows = torch.arange(start, min(start + batch_size, num_nodes))
        local = torch.arange(rows.numel()).view(-1, 1)
        lists = neighbor[rows]  # [B, k]: a's list
        their_lists = neighbor[lists]  # [B, k, k]: the list of b = a[p]
        rank[local, lists] = position.to(torch.int16)
        # rank_in_a[r, p, j]: where b's j-th entry is in a's list.
        rank_in_a = rank[local.unsqueeze(-1), their_lists].long()
        rank[local, lists] = -1
        b_in_a = rank_in_a >= 0
        # a_in_b[r, p, i]: a's i-th entry is in b's list.
        a_in_b = torch.zeros(rows.numel(), k, k + 1, dtype=torch.bool)
        a_in_b.scatter_(-1, torch.where(b_in_a, rank_in_a, k), True)
        a_in_b = a_in_b[..., :k]
        # O_a(b) = p; O_b(a): where a appears in b's list, k if absent.
        is_a = their_lists == rows.view(-1, 1, 1)
        rank_ba = torch.where(is_a.any(-1), is_a.int().argmax(-1),
                              torch.full_like(lists, k))
        d_ab = (~a_in_b).cumsum(-1).diagonal(dim1=1, dim2=2)  # at i = p
        d_ba = (~b_in_a).cumsum(-1).gather(
            -1, rank_ba.clamp(max=k - 1).unsqueeze(-1)).squeeze(-1)
        denominator = torch.minimum(position.expand_as(lists), rank_ba)
        batch = (d_ab + d_ba).float() / denominator.float()
        distance[rows] = batch.masked_fill(lists == rows.view(-1, 1),
                                           float('inf'))
    return distance


def approx_rank_order(neighbor: Tensor, threshold: float,
                      batch_size: int = 512,
                      progress_bar: bool | None = None) -> np.ndarray:
    r"""Approximate rank-order clustering: links every node to the kNN
    neighbours at rank-order distance :math:`D \leq` ``threshold``
    (:func:`rank_order_distance`) and returns the connected components
    (the transitive merge of the paper).

    Args:
        neighbor (Tensor): ``[N, k]`` neighbour ids (itself first).
        threshold (float): Largest linking distance (the original tables
            use ``0``).
        batch_size (int, optional): Rows per batch. (default: ``512``)
        progress_bar (bool, optional): Show a progress bar.

    Returns:
        np.ndarray: int64 ``[N]`` labels.
    """
    if threshold < 0:
        raise ValueError(f'threshold must be non-negative (got {threshold})')
    num_nodes, k = neighbor.shape
    distance = rank_order_distance(neighbor, batch_size, progress_bar)
    link = distance <= threshold
    target = torch.arange(num_nodes).view(-1, 1).expand(-1, k)[link]
    logger.info('Approximate rank order: %d of %d kNN pairs linked at '
                'D <= %g', int(link.sum()), num_nodes * (k - 1), threshold)
    return connected_components(torch.stack([neighbor[link], target]),
                                num_nodes)
