r"""Confidence targets of GCN-V, from "Learning to Cluster Faces via
Confidence and Connectivity Estimation" (`Yang et al., CVPR 2020
<https://arxiv.org/abs/2004.00445>`_).

A node's confidence says how surely it belongs to a dense, pure region of
its identity; GCN-V regresses it and each node then links to a more
confident neighbour (:mod:`ltc_pyg.cluster.peaks`). Every target here is
computed in one vectorised pass over the dense kNN arrays ``[N, k]`` (row
``i`` starts with ``i`` itself) or over the features; there is no loop over
nodes.
"""
from __future__ import annotations

import logging
from typing import Literal

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform
from torch_geometric.utils import scatter

logger = logging.getLogger(__name__)

ConfidenceMetric = Literal['s_nbr', 's_nbr_size_norm', 's_avg', 's_center',
                           'density']
CONFIDENCE_METRICS: tuple[str, ...] = ('s_nbr', 's_nbr_size_norm', 's_avg',
                                       's_center', 'density')


def _signed_neighbor_sum(neighbor: Tensor, similarity: Tensor,
                         labels: Tensor) -> Tensor:
    same = labels[neighbor] == labels.view(-1, 1)
    signed = torch.where(same, similarity, -similarity).double()
    return signed.sum(dim=1)


def neighbor_confidence(neighbor: Tensor, similarity: Tensor, labels: Tensor,
                        size_norm: bool = False,
                        batch: Tensor | None = None) -> Tensor:
    r"""The ``s_nbr`` target: similarity to same-identity neighbours minus
    similarity to other-identity neighbours,

    .. math::
        r_i = \sum_{j \in \mathcal{N}_k(i)} (\mathbb{1}[y_j = y_i] -
        \mathbb{1}[y_j \neq y_i])\, s_{ij},

    where the row :math:`\mathcal{N}_k(i)` includes ``i`` itself (adding
    :math:`s_{ii} \approx 1`). ``s_nbr`` is :math:`r_i / \max_j |r_j|`
    (one global scale); ``s_nbr_size_norm`` is :math:`r_i / k`.

    Args:
        neighbor (Tensor): ``[N, k]`` kNN ids, the node itself included.
        similarity (Tensor): ``[N, k]`` cosine similarities.
        labels (Tensor): ``[N]`` identities.
        size_norm (bool, optional): Divide by ``k`` instead of the global
            maximum. (default: :obj:`False`)
        batch (Tensor, optional): ``[N]`` graph of each node in a batch of
            graphs; the maximum is then taken per graph. (default:
            :obj:`None`)

    Returns:
        Tensor: float32 ``[N]``.
    """
    raw = _signed_neighbor_sum(neighbor, similarity, labels)
    if size_norm:
        return (raw / neighbor.size(1)).float()
    if batch is None:
        scale = raw.abs().max()
    else:
        scale = scatter(raw.abs(), batch, dim=0, reduce='max')[batch]
    return (raw / torch.where(scale > 0, scale, 1.0)).float()


def average_confidence(x: Tensor, labels: Tensor,
                       larger_ids_only: bool = False) -> Tensor:
    r"""The ``s_avg`` target: the mean cosine similarity of node ``i`` to
    the other members of its identity (0 for a singleton identity).

    Computed from per-identity feature sums, :math:`\langle x_i,
    \sum_{j \in C(i), j \neq i} x_j \rangle / (|C(i)| - 1)`, in float64.

    Args:
        x (Tensor): ``[N, D]`` L2-normalised features.
        labels (Tensor): ``[N]`` identities.
        larger_ids_only (bool, optional): Average only over members with a
            larger id than ``i`` (so the largest id of each identity gets 0),
            which is what the original implementation computes because it
            empties its member lists while looping; set it to reproduce the
            original values exactly. (default: :obj:`False`)

    Returns:
        Tensor: float32 ``[N]``.
    """
    num_nodes = x.size(0)
    x64 = x.double()
    if larger_ids_only:
        # Sort by (identity, id); the members after i in its identity are a
        # suffix of its block, whose sum is a reversed cumulative sum.
        order = torch.argsort(labels * num_nodes + torch.arange(num_nodes))
        sorted_labels = labels[order]
        suffix = x64[order].flip(0).cumsum(0).flip(0)
        block_end = torch.searchsorted(sorted_labels, sorted_labels,
                                       right=True)
        after = torch.cat([suffix, suffix.new_zeros(1, x.size(1))])
        others = suffix - x64[order] - after[block_end]
        count = block_end - torch.arange(num_nodes) - 1
        sums = torch.empty_like(x64)
        sums[order] = others
        counts = torch.empty_like(count)
        counts[order] = count
    else:
        _, inverse, sizes = torch.unique(labels, return_inverse=True,
                                         return_counts=True)
        totals = scatter(x64, inverse, dim=0, dim_size=sizes.numel(),
                         reduce='sum')
        sums = totals[inverse] - x64
        counts = sizes[inverse] - 1
    dot = (x64 * sums).sum(dim=1)
    return torch.where(counts > 0, dot / counts.clamp(min=1), 0.0).float()


def center_confidence(x: Tensor, labels: Tensor) -> Tensor:
    r"""The ``s_center`` target: similarity to the (unnormalised) mean of
    the node's identity, itself included,
    :math:`\langle x_i, \frac{1}{|C(i)|}\sum_{j \in C(i)} x_j \rangle`.

    Args:
        x (Tensor): ``[N, D]`` L2-normalised features.
        labels (Tensor): ``[N]`` identities.

    Returns:
        Tensor: float32 ``[N]``.
    """
    _, inverse = torch.unique(labels, return_inverse=True)
    centers = scatter(x.double(), inverse, dim=0, reduce='mean')
    return (x.double() * centers[inverse]).sum(dim=1).float()


def density(similarity: Tensor, radius: float, weighted: bool = True
            ) -> Tensor:
    r"""The unsupervised density of a node: the similarities (or, unweighted,
    the count) of the row entries within cosine distance ``radius``, the
    node itself included,
    :math:`\sum_{j \in \mathcal{N}_k(i),\, 1 - s_{ij} < r} s_{ij}`.

    Args:
        similarity (Tensor): ``[N, k]`` cosine similarities.
        radius (float): Cosine-distance radius :math:`r`.
        weighted (bool, optional): Sum similarities rather than count.
            (default: :obj:`True`)

    Returns:
        Tensor: float32 ``[N]`` (int64 counts when not ``weighted``).
    """
    inside = (1.0 - similarity.double()) < radius
    if not weighted:
        return inside.sum(dim=1)
    return torch.where(inside, similarity, 0.0).sum(dim=1, dtype=torch.float32)


def confidence_targets(data: Data, metric: ConfidenceMetric = 's_nbr',
                       radius: float = 0.5) -> Tensor:
    r"""Computes ``metric`` on a graph with ``knn_neighbor`` /
    ``knn_similarity`` (and ``y`` and ``x`` for the supervised metrics); see
    :class:`ConfidenceTargets`. On a :class:`~torch_geometric.data.Batch`
    every graph gets the values it gets alone."""
    if metric not in CONFIDENCE_METRICS:
        raise ValueError(f"Unknown confidence metric '{metric}' (expected one "
                         f'of {CONFIDENCE_METRICS})')
    if metric == 'density':
        return density(data.knn_similarity, radius)
    labels = getattr(data, 'y', None)
    if labels is None:
        raise ValueError(f"The '{metric}' confidence needs labels 'y'")
    if bool((labels < 0).any()):
        raise ValueError(f"The '{metric}' confidence needs every label; "
                         f'{int((labels < 0).sum())} of {labels.numel()} '
                         f'are unknown (-1)')
    batch = getattr(data, 'batch', None)
    if batch is not None:  # identities of different graphs stay apart
        labels = labels + batch * (int(labels.max()) + 1)
    if metric in ('s_nbr', 's_nbr_size_norm'):
        return neighbor_confidence(data.knn_neighbor, data.knn_similarity,
                                   labels, size_norm=metric != 's_nbr',
                                   batch=batch)
    if metric == 's_avg':
        return average_confidence(data.x, labels)
    return center_confidence(data.x, labels)


class ConfidenceTargets(BaseTransform):
    r"""Adds GCN-V's regression target ``data.confidence`` ``[N]``, from
    "Learning to Cluster Faces via Confidence and Connectivity Estimation"
    (`Yang et al., CVPR 2020 <https://arxiv.org/abs/2004.00445>`_).

    Metrics: ``'s_nbr'`` (default, :func:`neighbor_confidence`),
    ``'s_nbr_size_norm'``, ``'s_avg'`` (:func:`average_confidence`),
    ``'s_center'`` (:func:`center_confidence`) and the unsupervised
    ``'density'`` (:func:`density`, needs no labels).

    Args:
        metric (str, optional): The target. (default: ``'s_nbr'``)
        radius (float, optional): Cosine-distance radius of ``'density'``.
            (default: ``0.5``)
    """
    def __init__(self, metric: ConfidenceMetric = 's_nbr',
                 radius: float = 0.5) -> None:
        if metric not in CONFIDENCE_METRICS:
            raise ValueError(f"Unknown confidence metric '{metric}' "
                             f'(expected one of {CONFIDENCE_METRICS})')
        if radius <= 0:
            raise ValueError(f"'radius' must be positive (got {radius})")
        self.metric = metric
        self.radius = radius

    def forward(self, data: Data) -> Data:
        data.confidence = confidence_targets(data, self.metric, self.radius)
        return data

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(metric={self.metric}, '
                f'radius={self.radius})')
