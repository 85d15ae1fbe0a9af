r"""Training targets of proposals: IoU and IoP with the best-matching
ground-truth cluster, computed for all proposals at once.

The matching cluster :math:`G` of a proposal :math:`P` is the set of all
nodes carrying :math:`P`'s majority label; then

.. math::
    \text{IoU} = \frac{|P \cap G|}{|P \cup G|}, \qquad
    \text{IoP} = \frac{|P \cap G|}{|P|}.

A tie between labels goes to the label met first in the proposal's stored
node order, the original ``get_majority`` rule.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ltc_pyg.proposals.super_vertex import Proposals

__all__ = ['ProposalTargets', 'proposal_targets']


class ProposalTargets(NamedTuple):
    r"""Per-proposal targets, all ``[P]``.

    Args:
        majority_label (np.ndarray): int64 majority label.
        majority_tie (np.ndarray): bool, whether another label had the same
            count.
        iou (np.ndarray): float64 IoU.
        iop (np.ndarray): float64 IoP.
    """
    majority_label: np.ndarray
    majority_tie: np.ndarray
    iou: np.ndarray
    iop: np.ndarray


def proposal_targets(proposals: Proposals,
                     labels: np.ndarray) -> ProposalTargets:
    r"""Majority label, IoU and IoP of every proposal.

    Args:
        proposals (Proposals): ``P`` proposals over ``N`` nodes.
        labels (np.ndarray): ``[N]`` true labels (any integers; each value,
            negative ones included, is one identity).
    """
    labels = np.asarray(labels, dtype=np.int64)
    num = proposals.num_proposals
    if num == 0:
        empty = np.zeros(0)
        return ProposalTargets(empty.astype(np.int64), empty.astype(bool),
                               empty, empty)
    if proposals.nodes.size and (proposals.nodes.min() < 0 or
                                 proposals.nodes.max() >= labels.size):
        raise ValueError(f'Proposal node ids span [{proposals.nodes.min()}, '
                         f'{proposals.nodes.max()}], outside the '
                         f'{labels.size} labelled nodes')
    if (proposals.sizes == 0).any():
        raise ValueError(f'{int((proposals.sizes == 0).sum())} of {num} '
                         f'proposals are empty')
    classes, label_index = np.unique(labels, return_inverse=True)
    class_size = np.bincount(label_index)
    batch = proposals.batch
    member_class = label_index[proposals.nodes]
    # One entry per (proposal, label) pair: its count and the position where
    # the label first occurs in the proposal.
    keys = batch * classes.size + member_class
    pair_keys, first, count = np.unique(keys, return_index=True,
                                        return_counts=True)
    pair_proposal = pair_keys // classes.size
    pair_class = pair_keys % classes.size
    # Best pair per proposal: largest count, then earliest first occurrence.
    order = np.lexsort((first, -count, pair_proposal))
    head = np.r_[True, pair_proposal[order][1:] != pair_proposal[order][:-1]]
    best = order[head]
    best_count = count[best]
    ties = np.bincount(pair_proposal, weights=count == best_count[
        pair_proposal], minlength=num) > 1
    sizes = proposals.sizes
    union = sizes + class_size[pair_class[best]] - best_count
    return ProposalTargets(classes[pair_class[best]], ties,
                           best_count / union, best_count / sizes)
