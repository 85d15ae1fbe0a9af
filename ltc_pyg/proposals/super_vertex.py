r"""Super-vertex cluster proposals of "Learning to Cluster Faces on an
Affinity Graph" (`Yang et al., CVPR 2019 <https://arxiv.org/abs/1904.02749>`_).

A *basic* setting ``(k, th, step, max_size, min_size)`` keeps the links of
each node's top ``k`` whose similarity is :math:`\geq` ``th``, takes the
connected components and splits every component above ``max_size`` by
raising its threshold (:func:`~ltc_pyg.graph.components_components`);
components of at least ``min_size`` nodes are proposals. An *iterative*
setting then treats the basic components as super-vertices (mean feature,
re-normalised), searches a kNN graph over them, proposes groups of
super-vertices the same way and maps them back to faces. Several settings
run in one call (multi-scale).

Proposals are ragged: one flat array of node ids and ``P + 1`` offsets
(:class:`Proposals`); proposal ``p`` is ``nodes[offsets[p]:offsets[p+1]]``.
Everything is vectorised; each threshold round is one sparse
connected-components call.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform
from tqdm.auto import tqdm

from ltc_pyg.graph.components import (
    dynamic_threshold_components,
    relabel_by_first_appearance,
)
from ltc_pyg.graph.knn import KNNMethod, knn_search, l2_normalize

logger = logging.getLogger(__name__)

__all__ = [
    'IterativeSetting', 'ProposalSetting', 'Proposals', 'knn_pairs',
    'super_vertex_labels', 'labels_to_proposals', 'super_vertex_features',
    'iterative_proposals', 'generate_proposals', 'SuperVertexProposals',
]


@dataclass(frozen=True)
class IterativeSetting:
    r"""One iterative (super-vertex level) proposal setting.

    Args:
        k (int): kNN row length over super-vertices, itself included.
        th (float): Similarity threshold between super-vertices.
        step (float): Threshold step of the size-capped split.
        max_size (int): Largest proposal in faces.
        min_size (int): Smallest proposal in faces.
        sv_max_size (int): Largest group in super-vertices.
        sv_min_size (int): Smallest group in super-vertices.
    """
    k: int = 2
    th: float = 0.4
    step: float = 0.05
    max_size: int = 500
    min_size: int = 3
    sv_max_size: int = 8
    sv_min_size: int = 2

    def __post_init__(self) -> None:
        _check_setting(self.k, self.step, self.min_size, self.max_size)
        if not 1 <= self.sv_min_size <= self.sv_max_size:
            raise ValueError(f'Expected 1 <= sv_min_size <= sv_max_size (got '
                             f'{self.sv_min_size} and {self.sv_max_size})')


@dataclass(frozen=True)
class ProposalSetting:
    r"""One basic proposal setting and the iterative settings built on its
    super-vertices.

    Args:
        k (int): kNN row length used, the node itself included (at most the
            graph's).
        th (float): Keep links with similarity :math:`\geq` ``th``.
        step (float): Fraction of the gap to 1 added to the threshold of an
            oversized component per round.
        max_size (int): Largest proposal.
        min_size (int): Smallest proposal.
        keep (bool): Whether the basic proposals are proposals themselves
            (``False``: they only serve as super-vertices, the original's
            ``iter0=False``).
        iterations (tuple of IterativeSetting): Iterative settings over this
            setting's components.
    """
    k: int = 80
    th: float = 0.7
    step: float = 0.05
    max_size: int = 300
    min_size: int = 3
    keep: bool = True
    iterations: tuple[IterativeSetting, ...] = ()

    def __post_init__(self) -> None:
        _check_setting(self.k, self.step, self.min_size, self.max_size)


def _check_setting(k: int, step: float, min_size: int, max_size: int) -> None:
    if k < 1:
        raise ValueError(f'k must be at least 1 (got {k})')
    if not 0 < step <= 1:
        raise ValueError(f'step must be in (0, 1] (got {step})')
    if not 1 <= min_size <= max_size:
        raise ValueError(f'Expected 1 <= min_size <= max_size (got '
                         f'{min_size} and {max_size})')


@dataclass(frozen=True)
class Proposals:
    r"""Ragged node sets: proposal ``p`` is ``nodes[offsets[p]:offsets[p+1]]``.

    Args:
        nodes (np.ndarray): int64 ``[M]`` node ids, proposal after proposal.
        offsets (np.ndarray): int64 ``[P + 1]``, starting at 0.
    """
    nodes: np.ndarray
    offsets: np.ndarray

    @property
    def num_proposals(self) -> int:
        return self.offsets.size - 1

    @property
    def sizes(self) -> np.ndarray:
        r"""int64 ``[P]`` proposal sizes."""
        return np.diff(self.offsets)

    @property
    def batch(self) -> np.ndarray:
        r"""int64 ``[M]``: the proposal of each entry of :attr:`nodes`."""
        return np.repeat(np.arange(self.num_proposals), self.sizes)

    def __len__(self) -> int:
        return self.num_proposals

    def proposal(self, index: int) -> np.ndarray:
        r"""The node ids of proposal ``index``."""
        return self.nodes[self.offsets[index]:self.offsets[index + 1]]

    def select(self, mask: np.ndarray) -> Proposals:
        r"""The proposals where the boolean ``mask`` ``[P]`` is set."""
        return Proposals(self.nodes[mask[self.batch]],
                         np.r_[0, np.cumsum(self.sizes[mask])])

    @staticmethod
    def concat(parts: list[Proposals]) -> Proposals:
        r"""Concatenates proposal lists in order."""
        if not parts:
            return Proposals(np.zeros(0, np.int64), np.zeros(1, np.int64))
        sizes = np.concatenate([part.sizes for part in parts])
        return Proposals(np.concatenate([part.nodes for part in parts]),
                         np.r_[0, np.cumsum(sizes)].astype(np.int64))


def knn_pairs(neighbor: np.ndarray, similarity: np.ndarray, th: float,
              k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    r"""The undirected links of a kNN graph with similarity :math:`\geq`
    ``th``, self-pairs removed by id.

    A pair found in both rows keeps the similarity of its first occurrence
    in row-major order (the smaller id's row when both contain it), as the
    original ``filter_knns`` does.

    Args:
        neighbor (np.ndarray): ``[N, k']`` neighbour ids.
        similarity (np.ndarray): ``[N, k']`` similarities.
        th (float): Threshold.
        k (int, optional): Use only the first ``k`` columns.

    Returns:
        (np.ndarray, np.ndarray): pairs ``[E, 2]`` (``min, max``, sorted) and
        their similarities ``[E]``.
    """
    neighbor = np.asarray(neighbor)[:, :k]
    similarity = np.asarray(similarity)[:, :k]
    num_nodes = neighbor.shape[0]
    source = np.repeat(np.arange(num_nodes, dtype=np.int64), neighbor.shape[1])
    target = neighbor.reshape(-1).astype(np.int64)
    score = similarity.reshape(-1)
    keep = (target != source) & (score >= th) & (target >= 0)
    low = np.minimum(source[keep], target[keep])
    high = np.maximum(source[keep], target[keep])
    _, first = np.unique(low * num_nodes + high, return_index=True)
    return np.stack([low[first], high[first]], axis=1), score[keep][first]


def super_vertex_labels(neighbor: np.ndarray, similarity: np.ndarray,
                        th: float, step: float, max_size: int,
                        k: int | None = None) -> np.ndarray:
    r"""Components of the kNN links above ``th``, oversized ones split by a
    rising threshold (the original ``super_vertex``).

    Returns:
        np.ndarray: int64 ``[N]`` labels numbered by first appearance;
        ``-1`` for nodes without a link above ``th``.
    """
    pairs, scores = knn_pairs(neighbor, similarity, th, k)
    # The pairs are unique, so the pooling rule does not matter.
    return dynamic_threshold_components(pairs, scores, neighbor.shape[0],
                                        max_size, step, pool='last')


def labels_to_proposals(labels: np.ndarray, min_size: int = 1,
                        max_size: int | None = None) -> Proposals:
    r"""Clusters of a label vector as proposals, ordered by their smallest
    member id, members sorted; nodes labelled ``-1`` are left out.

    Args:
        labels (np.ndarray): ``[N]`` labels, ``-1`` = none.
        min_size (int, optional): Drop smaller clusters. (default: ``1``)
        max_size (int, optional): Drop larger clusters.
    """
    labels = np.asarray(labels, dtype=np.int64)
    nodes = np.flatnonzero(labels >= 0)
    if nodes.size == 0:
        return Proposals.concat([])
    # Rank the clusters by their smallest member: the order of first
    # appearance over increasing ids.
    _, first, inverse = np.unique(labels[nodes], return_index=True,
                                  return_inverse=True)
    rank = np.empty_like(first)
    rank[np.argsort(first, kind='stable')] = np.arange(first.size)
    cluster = rank[inverse]
    order = np.argsort(cluster, kind='stable')
    sizes = np.bincount(cluster, minlength=first.size)
    keep = sizes >= min_size
    if max_size is not None:
        keep &= sizes <= max_size
    proposals = Proposals(nodes[order], np.r_[0, np.cumsum(sizes)])
    return proposals.select(keep)


def super_vertex_features(x: np.ndarray, labels: np.ndarray,
                          normalize: bool = True) -> np.ndarray:
    r"""Mean feature of each cluster ``0..C-1`` of ``labels`` (every label
    must be :math:`\geq 0`), re-normalised to unit length by default."""
    labels = np.asarray(labels, dtype=np.int64)
    num_clusters = int(labels.max()) + 1 if labels.size else 0
    # Sums by one sparse product with the [C, N] assignment matrix.
    assignment = sp.csr_matrix(
        (np.ones(labels.size), (labels, np.arange(labels.size))),
        shape=(num_clusters, labels.size))
    sums = assignment @ np.asarray(x, dtype=np.float64)
    means = (sums / np.bincount(labels, minlength=num_clusters)[:, None])
    means = means.astype(np.float32)
    return l2_normalize(means) if normalize else means


def iterative_proposals(sv_of_node: np.ndarray, sv_neighbor: np.ndarray,
                        sv_similarity: np.ndarray,
                        setting: IterativeSetting) -> Proposals:
    r"""Proposals over super-vertices, mapped back to faces.

    Groups of at least ``sv_min_size`` super-vertices are the components of
    the super-vertex kNN graph (:func:`super_vertex_labels` with
    ``sv_max_size``); each becomes the proposal of all its faces, kept when
    it has ``min_size`` to ``max_size`` faces.

    Args:
        sv_of_node (np.ndarray): ``[N]`` super-vertex of each face, ``-1``
            for faces in none.
        sv_neighbor (np.ndarray): ``[S, k]`` kNN over super-vertices.
        sv_similarity (np.ndarray): ``[S, k]`` their similarities.
        setting (IterativeSetting): The setting.
    """
    sv_of_node = np.asarray(sv_of_node, dtype=np.int64)
    group = super_vertex_labels(sv_neighbor, sv_similarity, setting.th,
                                setting.step, setting.sv_max_size, setting.k)
    grouped = group >= 0
    group_size = np.bincount(group[grouped], minlength=group.size)
    group[grouped & (group_size[np.maximum(group, 0)]
                     < setting.sv_min_size)] = -1
    face_group = np.where(sv_of_node >= 0,
                          group[np.maximum(sv_of_node, 0)], -1)
    return labels_to_proposals(face_group, setting.min_size, setting.max_size)


def generate_proposals(x: np.ndarray, neighbor: np.ndarray,
                       similarity: np.ndarray,
                       settings: tuple[ProposalSetting, ...] | list,
                       knn_method: KNNMethod = 'flat', device: str = 'cpu',
                       progress_bar: bool | None = None
                       ) -> tuple[Proposals, np.ndarray]:
    r"""Runs every basic and iterative setting and concatenates their
    proposals.

    For iterative settings, every basic component is a super-vertex and every
    face outside one is a super-vertex of its own.

    Args:
        x (np.ndarray): ``[N, D]`` unit-length features.
        neighbor (np.ndarray): ``[N, k]`` kNN ids, itself first.
        similarity (np.ndarray): ``[N, k]`` similarities.
        settings (tuple of ProposalSetting): The settings.
        knn_method (str, optional): Search used over super-vertices.
        device (str, optional): Device of that search.
        progress_bar (bool, optional): Show a bar over the settings.

    Returns:
        (Proposals, np.ndarray): the proposals and, per proposal, the index
        of the setting that made it (basic settings and their iterative
        settings numbered in order: basic 0, its iterations, basic 1, ...).
    """
    num_nodes, k = neighbor.shape
    parts: list[Proposals] = []
    origin: list[np.ndarray] = []
    index = 0
    total = sum(1 + len(setting.iterations) for setting in settings)
    bar = tqdm(total=total, desc='proposals',
               disable=not (progress_bar if progress_bar is not None
                            else num_nodes > 100_000))
    for setting in settings:
        if setting.k > k:
            raise ValueError(f'Proposal setting k={setting.k} exceeds the '
                             f'kNN graph k={k}')
        labels = super_vertex_labels(neighbor, similarity, setting.th,
                                     setting.step, setting.max_size,
                                     setting.k)
        if setting.keep:
            parts.append(labels_to_proposals(labels, setting.min_size,
                                             setting.max_size))
            origin.append(np.full(parts[-1].num_proposals, index))
        index += 1
        bar.update()
        sv_knn = None  # One search over super-vertices for all iterations.
        if setting.iterations:
            # Faces outside every component are super-vertices of their
            # own; super-vertices are numbered by first appearance over face
            # ids, as the original reads them back from pred_labels.txt.
            sv_of_node = labels.copy()
            lonely = sv_of_node < 0
            sv_of_node[lonely] = num_nodes + np.arange(int(lonely.sum()))
            sv_of_node = relabel_by_first_appearance(sv_of_node)
            sv_x = super_vertex_features(x, sv_of_node)
            if sv_x.shape[0] >= 2:  # Each iteration reads its first k.
                sv_knn = knn_search(
                    sv_x, min(max(i.k for i in setting.iterations),
                              sv_x.shape[0]),
                    knn_method, device=device, normalize=False,
                    progress_bar=False)
        for iteration in setting.iterations:
            parts.append(Proposals.concat([]) if sv_knn is None else
                         iterative_proposals(sv_of_node, sv_knn.neighbor,
                                             sv_knn.similarity, iteration))
            origin.append(np.full(parts[-1].num_proposals, index))
            index += 1
            bar.update()
    bar.close()
    proposals = Proposals.concat(parts)
    logger.info('%d proposals from %d settings (%d memberships)',
                proposals.num_proposals, total, proposals.nodes.size)
    return proposals, (np.concatenate(origin).astype(np.int64) if origin
                       else np.zeros(0, np.int64))


class SuperVertexProposals(BaseTransform):
    r"""Adds multi-scale super-vertex proposals to an affinity graph
    (:func:`generate_proposals`).

    Reads ``x``, ``knn_neighbor`` and ``knn_similarity``; writes
    ``proposal_nodes`` ``[M]``, ``proposal_ptr`` ``[P + 1]`` and
    ``proposal_setting`` ``[P]`` (the setting that made each proposal).

    Args:
        settings (tuple of ProposalSetting): The settings.
        knn_method (str, optional): Search over super-vertices.
            (default: ``'flat'``)
        device (str, optional): Device of that search. (default: ``'cpu'``)
        progress_bar (bool, optional): Show a bar over the settings.
    """
    def __init__(self, settings: tuple[ProposalSetting, ...] | list,
                 knn_method: KNNMethod = 'flat', device: str = 'cpu',
                 progress_bar: bool | None = None) -> None:
        self.settings = tuple(settings)
        self.knn_method = knn_method
        self.device = device
        self.progress_bar = progress_bar

    def forward(self, data: Data) -> Data:
        proposals, setting = generate_proposals(
            data.x.numpy(), data.knn_neighbor.numpy(),
            data.knn_similarity.numpy(), self.settings, self.knn_method,
            self.device, self.progress_bar)
        data.proposal_nodes = torch.from_numpy(proposals.nodes)
        data.proposal_ptr = torch.from_numpy(proposals.offsets)
        data.proposal_setting = torch.from_numpy(setting)
        return data

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(settings={list(self.settings)}, '
                f'knn_method={self.knn_method!r})')
