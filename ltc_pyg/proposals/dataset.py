r"""Cluster proposals as small PyG graphs, for GCN-D (one score per
proposal) and GCN-S (one member/outlier label per node).

Each proposal becomes a :class:`~torch_geometric.data.Data` with

* ``x`` ``[n, D]``: its nodes' features, in the proposal's node order;
* ``n_id`` ``[n]``: their global ids;
* ``edge_index`` / ``edge_weight``: every kNN pair among its nodes (no
  similarity threshold), symmetric, weight 1 or (``weighted``) the cosine
  similarity (the larger of the two directions), plus self-loops of weight
  1, row-normalised (the weights into each node sum to 1);
* with labels: ``iou``, ``iop`` ``[1]`` (:func:`proposal_targets`) and
  ``node_label`` ``[n]`` (1 where the node carries the proposal's majority
  label, or the seed node's label when seeds are used);
* with seeds: ``seed_mask`` ``[n]`` (1 at the seed node). The seed is a
  random member (training: GCN-S learns to segment around any member), the
  first majority member (needs labels), or the *central* member: the one
  with the largest summed similarity to its kNN neighbours inside the
  proposal, which is rarely an outlier (inference).

:meth:`ProposalGraphs.collate` builds the :class:`~torch_geometric.data.Batch`
of many proposals in one vectorised pass (the same tensors as
``Batch.from_data_list``, never padded), so 300K proposals are never turned
into 300K Python objects; :meth:`ProposalGraphs.loader` iterates over it.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data
from torch_geometric.utils import coalesce

from ltc_pyg.graph.transforms import row_normalize
from ltc_pyg.proposals.super_vertex import Proposals
from ltc_pyg.proposals.targets import proposal_targets

__all__ = ['ProposalGraphs']

SeedMode = Literal['random', 'majority', 'central']


class ProposalGraphs(torch.utils.data.Dataset):
    r"""The proposals of one affinity graph as a dataset of small graphs.

    Args:
        x (Tensor): ``[N, D]`` node features.
        neighbor (np.ndarray): ``[N, k]`` kNN ids (the node itself may be in
            its row; it is skipped by id).
        similarity (np.ndarray): ``[N, k]`` kNN similarities.
        proposals (Proposals): The proposals.
        labels (np.ndarray, optional): ``[N]`` true labels; adds the IoU /
            IoP and per-node targets.
        weighted (bool, optional): Weight edges by similarity instead of 1.
            (default: :obj:`False`, the original's ``wo_weight=True``)
        seed_mode (str, optional): Add a ``seed_mask``: ``'random'`` picks
            one node per proposal uniformly (with ``seed``); ``'majority'``
            picks the first node that carries the majority label (needs
            labels); ``'central'`` picks the node with the largest summed
            kNN similarity to the other nodes of its proposal (ties: the
            first); :obj:`None` adds none. Node targets then mean "same
            label as the seed". (default: :obj:`None`)
        seed (int, optional): Seed of the random seed nodes. (default: ``0``)
    """
    def __init__(self, x: Tensor, neighbor: np.ndarray,
                 similarity: np.ndarray, proposals: Proposals,
                 labels: np.ndarray | None = None, weighted: bool = False,
                 seed_mode: SeedMode | None = None, seed: int = 0) -> None:
        neighbor = np.asarray(neighbor)
        if neighbor.shape[0] != x.size(0) or np.shape(similarity) != \
                neighbor.shape:
            raise ValueError(f'Expected kNN arrays [N, k] for N={x.size(0)} '
                             f'(got {neighbor.shape} and '
                             f'{np.shape(similarity)})')
        if proposals.nodes.size and (proposals.nodes.min() < 0 or
                                     proposals.nodes.max() >= x.size(0)):
            raise ValueError(f'Proposal node ids span '
                             f'[{proposals.nodes.min()}, '
                             f'{proposals.nodes.max()}], outside the '
                             f'{x.size(0)} nodes')
        if seed_mode == 'majority' and labels is None:
            raise ValueError("seed_mode='majority' needs labels")
        self.x = x
        self.neighbor = neighbor.astype(np.int64, copy=False)
        self.similarity = np.asarray(similarity, dtype=np.float32)
        self.proposals = proposals
        self.weighted = weighted
        self.seed_mode = seed_mode
        self.targets = None
        self.member_label = None
        self.seed_position = None
        if labels is not None:
            labels = np.asarray(labels, dtype=np.int64)
            self.targets = proposal_targets(proposals, labels)
            self.member_label = labels[proposals.nodes]
        if seed_mode == 'random':
            rng = np.random.default_rng(seed)
            self.seed_position = proposals.offsets[:-1] + np.floor(
                rng.random(len(proposals)) * proposals.sizes).astype(np.int64)
        elif seed_mode == 'majority':
            is_major = self.member_label == \
                self.targets.majority_label[proposals.batch]
            # First majority member of each proposal in stored order.
            first = np.flatnonzero(is_major)
            batch = proposals.batch[first]
            head = np.r_[True, batch[1:] != batch[:-1]]
            self.seed_position = first[head]
        elif seed_mode not in (None, 'central'):
            raise ValueError(f"Unknown seed_mode '{seed_mode}' (expected "
                             f"'random', 'majority', 'central' or None)")

    def __len__(self) -> int:
        return len(self.proposals)

    def __getitem__(self, index: int) -> Data:
        batch = self.collate([index])
        data = Data(x=batch.x, edge_index=batch.edge_index,
                    edge_weight=batch.edge_weight, n_id=batch.n_id)
        for key in ('iou', 'iop', 'node_label', 'seed_mask'):
            if key in batch:
                data[key] = batch[key]
        return data

    def collate(self, indices: list[int] | np.ndarray | Tensor) -> Batch:
        r"""The :class:`~torch_geometric.data.Batch` of the given proposals,
        built in one vectorised pass.

        Returns:
            Batch: ``x``, ``n_id``, ``edge_index``, ``edge_weight``,
            ``batch``, ``ptr``, ``proposal`` ``[B]`` (the indices), and the
            targets / ``seed_mask`` this dataset has.
        """
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        proposals = self.proposals
        sizes = proposals.sizes[indices]
        total = int(sizes.sum())
        ptr = np.r_[0, np.cumsum(sizes)]
        batch = np.repeat(np.arange(indices.size), sizes)
        position = proposals.offsets[indices][batch] + np.arange(total) - \
            ptr[batch]
        n_id = proposals.nodes[position]

        # Locate every kNN neighbour of every node in its own proposal.
        num_nodes = self.neighbor.shape[0]
        key = batch * num_nodes + n_id
        order = np.argsort(key, kind='stable')
        sorted_key = key[order]
        query = batch[:, None] * num_nodes + self.neighbor[n_id]
        found = np.minimum(np.searchsorted(sorted_key, query), total - 1)
        hit = sorted_key[found] == query
        target = np.broadcast_to(np.arange(total)[:, None], query.shape)[hit]
        source = order[found[hit]]
        similarity = self.similarity[n_id][hit]
        not_self = source != target
        edge_index = torch.from_numpy(
            np.stack([source[not_self], target[not_self]]))
        weight = torch.from_numpy(similarity[not_self]) if self.weighted \
            else torch.ones(int(not_self.sum()))
        loop = torch.arange(total).repeat(2, 1)
        edge_index, weight = coalesce(
            torch.cat([edge_index, edge_index.flip(0), loop], dim=1),
            torch.cat([weight, weight, torch.ones(total)]), total,
            reduce='max')
        weight = row_normalize(edge_index, weight, total)

        out = Batch(x=self.x[torch.from_numpy(n_id)],
                    n_id=torch.from_numpy(n_id), edge_index=edge_index,
                    edge_weight=weight, batch=torch.from_numpy(batch),
                    ptr=torch.from_numpy(ptr),
                    proposal=torch.from_numpy(indices))
        seed_local = None  # Each proposal's seed, as a row of the batch.
        if self.seed_mode == 'central':
            strength = np.bincount(target[not_self],
                                   weights=similarity[not_self],
                                   minlength=total)
            order = np.lexsort((-strength, batch))
            seed_local = order[ptr[:-1]]
        elif self.seed_position is not None:
            seed_local = self.seed_position[indices] - \
                proposals.offsets[indices] + ptr[:-1]
        if self.targets is not None:
            out.iou = torch.from_numpy(self.targets.iou[indices]).float()
            out.iop = torch.from_numpy(self.targets.iop[indices]).float()
            member_label = self.member_label[position]
            reference = (self.targets.majority_label[indices]
                         if seed_local is None else member_label[seed_local])
            out.node_label = torch.from_numpy(
                (member_label == reference[batch]).astype(np.int64))
        if seed_local is not None:
            seed_mask = np.zeros(total, dtype=np.float32)
            seed_mask[seed_local] = 1.0
            out.seed_mask = torch.from_numpy(seed_mask)
        return out

    def loader(self, batch_size: int, shuffle: bool = False,
               generator: torch.Generator | None = None,
               indices: np.ndarray | None = None) -> Iterator[Batch]:
        r"""Yields batches of ``batch_size`` proposals (of ``indices``, or
        all), in order or shuffled with ``generator``."""
        indices = (np.arange(len(self)) if indices is None else
                   np.asarray(indices, dtype=np.int64))
        if shuffle:
            indices = indices[torch.randperm(indices.size,
                                             generator=generator).numpy()]
        for start in range(0, indices.size, batch_size):
            yield self.collate(indices[start:start + batch_size])

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({len(self)}, '
                f'weighted={self.weighted}, seed_mode={self.seed_mode!r})')
