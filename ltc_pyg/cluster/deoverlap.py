r"""De-overlapping scored cluster proposals into one label per node (GCN-D's
post-processing).

Proposals are ranked by score (a stable sort, so equal scores keep list
order); each node goes to the best-ranked kept proposal that contains it;
nodes in no proposal become singletons. Optionally, nodes that a
segmentation model (GCN-S) marks as outliers are removed from their
proposals first, and greedy non-maximum suppression drops proposals that
overlap a better one too much.
"""
from __future__ import annotations

import logging
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from ltc_pyg.graph.components import relabel_by_first_appearance

logger = logging.getLogger(__name__)

__all__ = ['NodeSets', 'deoverlap', 'nms']


class NodeSets(Protocol):
    r"""Ragged node sets, as de-overlapping reads them (e.g.
    :class:`~ltc_pyg.proposals.Proposals`): set ``p`` is
    ``nodes[offsets[p]:offsets[p + 1]]``."""
    nodes: np.ndarray
    offsets: np.ndarray

    @property
    def num_proposals(self) -> int:
        r"""The number of sets ``P``."""

    @property
    def batch(self) -> np.ndarray:
        r"""int64 ``[M]``: the set of each entry of ``nodes``."""


def nms(nodes: np.ndarray, offsets: np.ndarray, th_iou: float) -> np.ndarray:
    r"""Greedy non-maximum suppression of proposals given best first: a
    proposal is dropped when its IoU with a kept earlier one is above
    ``th_iou``.

    Overlaps come from one sparse product; the greedy pass loops over
    proposals (not nodes) and visits each overlapping pair once.

    Args:
        nodes (np.ndarray): ``[M]`` node ids, proposal after proposal.
        offsets (np.ndarray): ``[P + 1]`` proposal boundaries in ``nodes``.
        th_iou (float): IoU above which the later proposal is dropped.

    Returns:
        np.ndarray: bool ``[P]``, the kept proposals.
    """
    sizes = np.diff(offsets)
    num = sizes.size
    membership = sp.csr_matrix(
        (np.ones(nodes.size, dtype=np.int64),
         (np.repeat(np.arange(num), sizes), nodes)),
        shape=(num, int(nodes.max(initial=-1)) + 1))
    overlap = sp.tril(membership @ membership.T, k=-1).tocsr()
    rows = np.repeat(np.arange(num), np.diff(overlap.indptr))
    iou = overlap.data / (sizes[rows] + sizes[overlap.indices] - overlap.data)
    suppressing = sp.csr_matrix((iou > th_iou, (rows, overlap.indices)),
                                shape=(num, num))
    suppressing.eliminate_zeros()
    keep = np.ones(num, dtype=bool)
    for index in np.flatnonzero(np.diff(suppressing.indptr)):
        earlier = suppressing.indices[suppressing.indptr[index]:
                                      suppressing.indptr[index + 1]]
        keep[index] = not keep[earlier].any()
    return keep


def deoverlap(scores: np.ndarray, proposals: NodeSets, num_nodes: int,
              th_pos: float = -np.inf, th_iou: float = 1.0,
              outlier_scores: np.ndarray | None = None,
              th_outlier: float = 0.5, keep_outlier: bool = False
              ) -> np.ndarray:
    r"""Turns scored, overlapping proposals into a partition.

    Args:
        scores (np.ndarray): ``[P]`` proposal scores (e.g. predicted IoU).
        proposals (NodeSets): The proposals.
        num_nodes (int): ``N``.
        th_pos (float, optional): Drop proposals scoring below this.
            (default: keep all)
        th_iou (float, optional): Non-maximum suppression of proposals whose
            IoU with a better kept one is above this; ``1`` turns it off.
            (default: ``1.0``)
        outlier_scores (np.ndarray, optional): ``[M]`` per-membership
            probability of belonging (GCN-S), aligned with
            ``proposals.nodes``; members scoring :math:`\leq` ``th_outlier``
            are removed from their proposal.
        th_outlier (float, optional): See above. (default: ``0.5``)
        keep_outlier (bool, optional): Keep each proposal's removed members
            as an extra cluster, ranked after every cleaned proposal.
            (default: :obj:`False`)

    Returns:
        np.ndarray: int64 ``[N]`` labels: covered nodes ``0..C-1`` by first
        appearance over node ids, then one singleton per uncovered node, as
        the original ``write_meta`` numbers them.
    """
    scores = np.asarray(scores, dtype=np.float64)
    num = proposals.num_proposals
    if scores.shape != (num, ):
        raise ValueError(f'Expected {num} scores (got shape {scores.shape})')
    if proposals.nodes.size and (proposals.nodes.min() < 0 or
                                 proposals.nodes.max() >= num_nodes):
        raise ValueError(f'Proposal node ids span [{proposals.nodes.min()}, '
                         f'{proposals.nodes.max()}], outside [0, '
                         f'{num_nodes - 1}]')
    selected = np.flatnonzero(scores >= th_pos)
    order = selected[np.argsort(-scores[selected], kind='stable')]
    rank = np.full(num, -1)
    rank[order] = np.arange(order.size)
    batch = proposals.batch
    member_rank = rank[batch]
    if outlier_scores is not None:
        outlier_scores = np.asarray(outlier_scores)
        if outlier_scores.shape != proposals.nodes.shape:
            raise ValueError(f'Expected {proposals.nodes.size} outlier '
                             f'scores, one per membership (got shape '
                             f'{outlier_scores.shape})')
        outlier = outlier_scores <= th_outlier
        member_rank = np.where(outlier, order.size + member_rank,
                               member_rank) if keep_outlier else np.where(
                                   outlier, -1, member_rank)
    covered = member_rank >= 0
    nodes, member_rank = proposals.nodes[covered], member_rank[covered]
    if th_iou < 1 and nodes.size:
        # Clusters in rank order, then suppression among them.
        cluster_order = np.argsort(member_rank, kind='stable')
        ranks, sizes = np.unique(member_rank, return_counts=True)
        kept = nms(nodes[cluster_order], np.r_[0, np.cumsum(sizes)], th_iou)
        keep_rank = np.zeros(int(member_rank.max()) + 1, dtype=bool)
        keep_rank[ranks[kept]] = True
        nodes, member_rank = nodes[keep_rank[member_rank]], member_rank[
            keep_rank[member_rank]]
    best = np.full(num_nodes, np.iinfo(np.int64).max)
    np.minimum.at(best, nodes, member_rank)
    labels = np.where(best < np.iinfo(np.int64).max, best, -1)
    logger.info('De-overlap: %d of %d proposals kept, %d of %d nodes '
                'covered', np.unique(labels[labels >= 0]).size, num,
                int((labels >= 0).sum()), num_nodes)
    return relabel_by_first_appearance(labels)
