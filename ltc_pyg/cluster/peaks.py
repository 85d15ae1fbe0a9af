r"""From confidences to clusters, as in "Learning to Cluster Faces via
Confidence and Connectivity Estimation" (`Yang et al., CVPR 2020
<https://arxiv.org/abs/2004.00445>`_): each node links to its most similar
neighbours of strictly higher confidence (its *peaks*), links at or below a
similarity ``tau`` are cut, and the rest merge by connected components.

Everything works on the dense kNN arrays ``[N, k]`` (row ``i`` sorted by
decreasing similarity) with array operations; the merge is
:func:`~ltc_pyg.cluster.merge.connected_components` (sparse, no union-find).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ltc_pyg.graph.components import connected_components


class Peaks(NamedTuple):
    r"""Each node's up to ``max_conn`` peaks: ``index`` int64 ``[N, m]``
    (``-1`` = none) and ``similarity`` float32 ``[N, m]`` (NaN = none)."""
    index: Tensor
    similarity: Tensor


def confidence_to_peaks(neighbor: Tensor, similarity: Tensor,
                        confidence: Tensor, max_conn: int = 1) -> Peaks:
    r"""Finds, for every node ``i``, the first ``max_conn`` entries ``j`` of
    its kNN row with :math:`c_j > c_i` (strictly; ``i`` itself never
    qualifies).

    Args:
        neighbor (Tensor): ``[N, k]`` kNN ids, rows sorted by decreasing
            similarity.
        similarity (Tensor): ``[N, k]`` cosine similarities.
        confidence (Tensor): ``[N]`` confidences.
        max_conn (int, optional): Peaks kept per node. (default: ``1``)

    Returns:
        Peaks: ``[N, max_conn]`` ids and similarities, in row order.
    """
    if max_conn < 1:
        raise ValueError(f"'max_conn' must be at least 1 (got {max_conn})")
    if confidence.numel() != neighbor.size(0):
        raise ValueError(f'Got {confidence.numel()} confidences for '
                         f'{neighbor.size(0)} nodes')
    num_nodes = neighbor.size(0)
    higher = confidence[neighbor] > confidence.view(-1, 1)
    rank = higher.cumsum(dim=1) - 1  # position among the qualifying entries
    keep = higher & (rank < max_conn)
    row, col = keep.nonzero(as_tuple=True)
    index = neighbor.new_full((num_nodes, max_conn), -1)
    peak_similarity = similarity.new_full((num_nodes, max_conn), float('nan'))
    index[row, rank[row, col]] = neighbor[row, col]
    peak_similarity[row, rank[row, col]] = similarity[row, col]
    return Peaks(index, peak_similarity)


def peaks_to_edges(peaks: Peaks, tau: float) -> Tensor:
    r"""The links ``(i, peak)`` kept at similarity strictly above ``tau``.

    Returns:
        Tensor: ``[2, E]`` (node, peak), node ascending, then peak order.
    """
    num_nodes = peaks.index.size(0)
    source = torch.arange(num_nodes).view(-1, 1).expand_as(peaks.index)
    keep = ((peaks.index >= 0) & (peaks.index != source)
            & (peaks.similarity > tau))
    return torch.stack([source[keep], peaks.index[keep]])


def peaks_to_labels(peaks: Peaks, tau: float) -> np.ndarray:
    r"""Clusters = connected components of the links kept by
    :func:`peaks_to_edges`; nodes without a kept link are singletons.

    Returns:
        np.ndarray: int64 ``[N]`` labels, numbered by first appearance.
    """
    return connected_components(peaks_to_edges(peaks, tau),
                                peaks.index.size(0))
