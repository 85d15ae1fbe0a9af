r"""GCN-E candidate subgraphs, from "Learning to Cluster Faces via Confidence
and Connectivity Estimation" (`Yang et al., CVPR 2020
<https://arxiv.org/abs/2004.00445>`_).

A node's *candidates* are the entries of its kNN row with strictly higher
confidence, in row order. Nodes with one candidate, and the least confident
``ignore_ratio`` of the nodes, link directly to their first (most similar)
candidate; every other node with candidates becomes the *centre* of a small
subgraph on its candidates, on which GCN-E predicts the one to link to.

Subgraphs are PyG :class:`~torch_geometric.data.Data` objects concatenated
into a :class:`~torch_geometric.data.Batch` (never padded). For speed the
batch is assembled directly with array operations; it is identical to
``Batch.from_data_list`` of the single subgraphs (tested).
"""
from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Batch
from torch_geometric.typing import SparseTensor

from ltc_pyg.graph.sparse import csr_arrays, csr_entry_positions
from ltc_pyg.graph.transforms import row_normalize

logger = logging.getLogger(__name__)


class CandidateSelection(NamedTuple):
    r"""How each node gets its link.

    * ``direct_peak`` int64 ``[N]``: the first candidate of nodes that link
      without GCN-E (one candidate, or ignored); ``-1`` otherwise;
    * ``centers`` int64 ``[S]``: nodes that get a subgraph, ascending;
    * ``ignored`` int64 ``[I]``: the ``ignore_ratio`` least confident nodes,
      ascending.
    """
    direct_peak: Tensor
    centers: Tensor
    ignored: Tensor


def select_candidates(neighbor: Tensor, confidence: Tensor,
                      ignore_ratio: float = 0.8) -> CandidateSelection:
    r"""Splits the nodes into direct links and GCN-E subgraph centres.

    The ignored nodes are the ``int(N * ignore_ratio)`` smallest
    confidences, chosen with :func:`numpy.argpartition` as in the original
    implementation (ties at the cut are resolved the same way).

    Args:
        neighbor (Tensor): ``[N, k]`` kNN ids, rows sorted by decreasing
            similarity.
        confidence (Tensor): ``[N]`` confidences.
        ignore_ratio (float, optional): Fraction of least confident nodes
            that skip GCN-E. (default: ``0.8``)
    """
    if not 0.0 <= ignore_ratio <= 1.0:
        raise ValueError(f"'ignore_ratio' must be in [0, 1] (got "
                         f'{ignore_ratio})')
    num_nodes = neighbor.size(0)
    if confidence.numel() != num_nodes:
        raise ValueError(f'Got {confidence.numel()} confidences for '
                         f'{num_nodes} nodes')
    higher = confidence[neighbor] > confidence.view(-1, 1)
    num_candidates = higher.sum(dim=1)
    first = neighbor.gather(1, higher.byte().argmax(dim=1, keepdim=True))
    first = first.view(-1)
    num_ignored = int(num_nodes * ignore_ratio)
    if num_ignored >= num_nodes:
        ignored = torch.arange(num_nodes)
    else:
        ignored = torch.from_numpy(np.sort(np.argpartition(
            confidence.cpu().numpy(), num_ignored)[:num_ignored]))
    is_ignored = torch.zeros(num_nodes, dtype=torch.bool)
    is_ignored[ignored] = True
    direct = (num_candidates == 1) | ((num_candidates > 1) & is_ignored)
    direct_peak = torch.where(direct, first, -1)
    centers = ((num_candidates > 1) & ~is_ignored).nonzero().view(-1)
    logger.info('%d nodes link directly, %d get a GCN-E subgraph, %d have no '
                'candidate', int(direct.sum()), centers.numel(),
                int((num_candidates == 0).sum()))
    return CandidateSelection(direct_peak, centers, ignored)


class CandidateSubgraphs:
    r"""Builds batches of GCN-E candidate subgraphs.

    The subgraph of centre ``c`` has one node per candidate ``j`` (in kNN row
    order; ``c`` itself is not a node) with

    * ``x``: :math:`\mathbf{x}_j - \mathbf{x}_c`;
    * edges ``q -> p`` wherever the global adjacency has an entry
      ``adj_t[p, q]`` between two candidates (self-loops included), weighted
      by that entry re-normalised over the subgraph's row ``p``;
    * ``n_id``: the candidates' global ids; ``similarity``: their kNN
      similarity to ``c``; ``y`` (when labels are given): 1 where the
      candidate has ``c``'s label;
    * graph-level ``center``: ``c``.

    Args:
        x (Tensor): ``[N, D]`` node features.
        neighbor (Tensor): ``[N, k]`` kNN ids (sorted rows).
        similarity (Tensor): ``[N, k]`` kNN similarities.
        confidence (Tensor): ``[N]`` confidences.
        adj_t (Tensor or SparseTensor): The global row-normalised adjacency
            ``[N, N]`` (row = target) as a ``torch.sparse_csr`` tensor or a
            ``torch_sparse.SparseTensor``, e.g. from
            :func:`~ltc_pyg.graph.transforms.to_sparse_adjacency`.
        labels (Tensor, optional): ``[N]`` identities, for training targets.
    """
    def __init__(self, x: Tensor, neighbor: Tensor, similarity: Tensor,
                 confidence: Tensor, adj_t: Tensor | SparseTensor,
                 labels: Tensor | None = None) -> None:
        num_nodes = x.size(0)
        rowptr, col, values = csr_arrays(adj_t)
        if tuple(adj_t.sizes() if isinstance(adj_t, SparseTensor)
                 else adj_t.shape) != (num_nodes, num_nodes):
            raise ValueError(f'Expected adj_t of shape ({num_nodes}, '
                             f'{num_nodes}) for {num_nodes} nodes')
        self.x = x
        self.neighbor = neighbor
        self.similarity = similarity
        self.confidence = confidence
        self.labels = labels
        self.rowptr, self.col, self.values = rowptr, col, values

    def __call__(self, centers: Tensor) -> Batch:
        r"""The subgraphs of ``centers`` (each needs at least one
        candidate), concatenated into one :class:`Batch`."""
        rows = self.neighbor[centers]
        higher = self.confidence[rows] > self.confidence[centers].view(-1, 1)
        sizes = higher.sum(dim=1)
        if bool((sizes == 0).any()):
            raise ValueError(f'{int((sizes == 0).sum())} centres have no '
                             f'candidate (first: '
                             f'{centers[sizes == 0][:5].tolist()})')
        n_id = rows[higher]
        batch = torch.repeat_interleave(torch.arange(centers.numel()), sizes)
        ptr = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)])
        center_of_node = centers[batch]

        # All ordered node pairs inside each subgraph, target-major.
        pairs_per_node = sizes[batch]
        target = torch.repeat_interleave(torch.arange(n_id.numel()),
                                         pairs_per_node)
        pair_start = torch.cumsum(pairs_per_node, 0) - pairs_per_node
        offset = (torch.arange(target.numel())
                  - torch.repeat_interleave(pair_start, pairs_per_node))
        source = ptr[batch[target]] + offset
        position = csr_entry_positions(self.rowptr, self.col, n_id[target],
                                       n_id[source])
        found = position >= 0
        edge_index = torch.stack([source[found], target[found]])
        edge_weight = row_normalize(edge_index, self.values[position[found]],
                                    n_id.numel())

        data = Batch(x=self.x[n_id] - self.x[center_of_node],
                     edge_index=edge_index, edge_weight=edge_weight, n_id=n_id,
                     similarity=self.similarity[centers][higher],
                     center=centers, batch=batch, ptr=ptr)
        if self.labels is not None:
            data.y = (self.labels[n_id] == self.labels[center_of_node]).long()
        return data


def pick_per_subgraph(score: Tensor, batch: Tensor, num_graphs: int,
                      generator: torch.Generator | None = None) -> Tensor:
    r"""The position of the highest ``score`` in each subgraph; tied maxima
    are broken uniformly at random (as the original does).

    Args:
        score (Tensor): ``[T]`` node scores.
        batch (Tensor): ``[T]`` subgraph of each node (sorted).
        num_graphs (int): ``S``; every subgraph must have a node.
        generator (torch.Generator, optional): Source of the tie-breaks.

    Returns:
        Tensor: int64 ``[S]`` positions into ``score``.
    """
    tie_break = torch.rand(score.numel(), generator=generator)
    order = np.lexsort((tie_break.numpy(), -score.detach().cpu().numpy(),
                        batch.cpu().numpy()))
    first = np.searchsorted(batch.cpu().numpy()[order], np.arange(num_graphs))
    return torch.from_numpy(order[first])
