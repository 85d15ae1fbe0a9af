r"""Instance pivot subgraphs (IPS) of "Linkage Based Face Clustering via
Graph Convolution Network" (`Wang et al., CVPR 2019
<https://arxiv.org/abs/1903.11306>`_).

The subgraph of pivot :math:`p` holds :math:`p`, its ``k_at_hop[0]``
nearest neighbours (the *one-hop* nodes, whose linkage to :math:`p` is
predicted) and, for each of them, its ``k_at_hop[1]`` nearest neighbours.
Node features are relative to the pivot, :math:`\mathbf{x}_j -
\mathbf{x}_p`; each node is linked to those of its ``active_connection``
nearest neighbours that are in the subgraph, symmetrically, and the weights
are row-normalised.

Many pivots are built at once with array operations from the dense ``[N, k]``
kNN arrays, directly as one :class:`~torch_geometric.data.Batch` (identical
to ``Batch.from_data_list`` of the single subgraphs; never padded).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data
from torch_geometric.transforms import BaseTransform
from torch_geometric.utils import coalesce

from ltc_pyg.graph.transforms import row_normalize

logger = logging.getLogger(__name__)


def nearest_others(neighbor: Tensor, nodes: Tensor, count: int) -> Tensor:
    r"""The first ``count`` entries of the kNN rows of ``nodes``, each row
    without the node itself (dropped by id, wherever it stands).

    Args:
        neighbor (Tensor): ``[N, k]`` kNN ids, rows sorted by decreasing
            similarity.
        nodes (Tensor): ``[R]`` node ids.
        count (int): Entries kept per row, at most ``k - 1``.

    Returns:
        Tensor: ``[R, count]`` neighbour ids, in row order.
    """
    head = neighbor[:, :count + 1][nodes]
    is_self = head == nodes.view(-1, 1)
    if is_self[:, 0].all() and not is_self[:, 1:].any():
        return head[:, 1:]  # the usual kNN rows: the node first
    rows = neighbor[nodes]
    is_self = (rows == nodes.view(-1, 1)).to(torch.uint8)
    order = torch.sort(is_self, dim=1, stable=True).indices[:, :count]
    return rows.gather(1, order)


def covering_pivots(neighbor: Tensor, num_one_hop: int, coverage: int,
                    generator: torch.Generator | None = None,
                    rounds: int = 64) -> Tensor:
    r"""Pivots whose subgraphs reach every node: each node is a pivot or a
    one-hop node of at least ``coverage`` pivots.

    Nodes are visited in a random order, split into ``rounds`` equal parts
    (whatever :math:`N`, so a node's neighbours mostly come in other
    rounds); a visited node becomes a pivot when fewer than ``coverage`` of
    the pivots chosen in earlier rounds have it among their
    ``num_one_hop`` nearest others (:func:`nearest_others`). Reaching the
    :math:`N - P` other nodes :math:`c` times with :math:`k_1` one-hop nodes
    per pivot needs :math:`P \geq N c / (k_1 + c)`; kNN graphs have hubs
    and anti-hubs, so the rule takes more: 14% of the nodes for
    :math:`k_1 = 79, c = 4` on the synthetic benchmark, where the bound is
    5%.

    Args:
        neighbor (Tensor): ``[N, k]`` kNN ids, rows sorted by decreasing
            similarity.
        num_one_hop (int): One-hop nodes per pivot, at most ``k - 1``.
        coverage (int): Pivots that must reach each node that is not one.
        generator (torch.Generator, optional): Draws the visiting order.
        rounds (int, optional): Rounds of visits (``1``: every node is a
            pivot; ``N``: one node at a time). (default: ``64``)

    Returns:
        Tensor: ``[P]`` pivot ids, ascending.
    """
    if coverage < 1 or rounds < 1:
        raise ValueError(f'covering_pivots needs coverage >= 1 and '
                         f'rounds >= 1 (got coverage={coverage}, '
                         f'rounds={rounds})')
    num_nodes = neighbor.size(0)
    order = torch.randperm(num_nodes, generator=generator).to(neighbor.device)
    times_reached = neighbor.new_zeros(num_nodes)
    is_pivot = torch.zeros(num_nodes, dtype=torch.bool,
                           device=neighbor.device)
    for visited in order.tensor_split(rounds):
        new = visited[times_reached[visited] < coverage]
        is_pivot[new] = True
        reached = nearest_others(neighbor, new, num_one_hop).reshape(-1)
        times_reached.index_add_(0, reached, torch.ones_like(reached))
    return is_pivot.nonzero().view(-1)


class PivotSubgraphs(BaseTransform):
    r"""Builds the instance pivot subgraphs of L-GCN (`Wang et al., CVPR 2019
    <https://arxiv.org/abs/1903.11306>`_) from the affinity graph.

    Calling the transform on the affinity graph (``x``, ``knn_neighbor``
    ``[N, k]``, optional ``y``) returns the subgraphs of every node as one
    :class:`~torch_geometric.data.Batch`; :meth:`subgraphs` builds those of
    chosen pivots, e.g. one mini-batch. Subgraph :math:`b` has

    * ``n_id``: global ids, the pivot first, then the one-hop nodes in kNN
      order, then the other nodes in order of first appearance;
    * ``x``: :math:`\mathbf{x}_j - \mathbf{x}_p` (``[n_b, D]``);
    * ``edge_index`` / ``edge_weight``: :math:`j \to i` for every pair where
      one is among the other's ``active_connection`` nearest neighbours,
      weighted :math:`1 / \deg(i)`;
    * ``pivot_index`` ``[1]`` and ``one_hop_index`` ``[k_1]``: local node
      positions (shifted by the batching like ``edge_index``);
    * ``y`` ``[k_1]`` when the graph has labels: 1 where the one-hop node has
      the pivot's identity (never for the unknown label ``-1``).

    The row length ``k`` (the node itself included) caps every count at
    ``k - 1``: the original code takes all ``k - 1`` neighbours as one-hop
    nodes whatever ``k_at_hop[0]`` says, so ``k_at_hop[0] >= k - 1``
    reproduces it.

    Args:
        k_at_hop (sequence of int, optional): One-hop and two-hop neighbour
            counts. (default: ``(200, 10)``)
        active_connection (int, optional): Neighbours each node links to.
            (default: ``10``)
    """
    def __init__(self, k_at_hop: Sequence[int] = (200, 10),
                 active_connection: int = 10) -> None:
        k_at_hop = tuple(int(k) for k in k_at_hop)
        if len(k_at_hop) != 2 or min(k_at_hop) < 1:
            raise ValueError(f"'k_at_hop' must be two positive counts (got "
                             f'{k_at_hop})')
        if active_connection < 1:
            raise ValueError(f"'active_connection' must be at least 1 (got "
                             f'{active_connection})')
        self.k_at_hop = k_at_hop
        self.active_connection = active_connection

    def counts(self, k: int) -> tuple[int, int, int]:
        r"""The one-hop, two-hop and link counts used with kNN rows of
        length ``k``."""
        if k < 2:
            raise ValueError(f'Pivot subgraphs need kNN rows with at least '
                             f'one neighbour besides the node (got k={k})')
        return (min(self.k_at_hop[0], k - 1), min(self.k_at_hop[1], k - 1),
                min(self.active_connection, k - 1))

    def forward(self, data: Data) -> Batch:
        return self.subgraphs(data, torch.arange(
            data.num_nodes, device=data.knn_neighbor.device))

    def subgraphs(self, data: Data, pivots: Tensor) -> Batch:
        r"""The subgraphs of ``pivots`` (``[B]`` global ids) as one
        :class:`~torch_geometric.data.Batch` (``B`` graphs)."""
        x, neighbor = data.x, data.knn_neighbor
        if x.size(0) != neighbor.size(0):
            raise ValueError(f"'x' has {x.size(0)} rows but the kNN arrays "
                             f'have {neighbor.size(0)}')
        subgraphs = self.structure(neighbor, pivots)
        pivots = subgraphs.n_id[subgraphs.pivot_index]
        subgraphs.x = x[subgraphs.n_id] - x[pivots[subgraphs.batch]]
        if 'y' in data and data.y is not None:
            pivot_label = data.y[pivots].view(-1, 1)
            one_hop = subgraphs.n_id[subgraphs.one_hop_index]
            subgraphs.y = ((data.y[one_hop].view(pivots.numel(), -1)
                            == pivot_label)
                           & (pivot_label >= 0)).view(-1).long()
        return subgraphs

    def structure(self, neighbor: Tensor, pivots: Tensor) -> Batch:
        r"""The subgraphs of ``pivots`` (``[B]`` global ids) from the
        ``[N, k]`` kNN ids alone: :meth:`subgraphs` without ``x`` and
        ``y``."""
        num_nodes, k = neighbor.shape
        pivots = pivots.view(-1).to(neighbor.device)
        if pivots.numel() == 0:
            raise ValueError('No pivots given')
        num_pivots = pivots.numel()
        num_one_hop, num_two_hop, num_links = self.counts(k)

        one_hop = nearest_others(neighbor, pivots, num_one_hop)
        two_hop = nearest_others(neighbor, one_hop.reshape(-1), num_two_hop)
        members = torch.cat([pivots.view(-1, 1), one_hop,
                             two_hop.reshape(num_pivots, -1)], dim=1)
        # Key b * N + id names node `id` of subgraph b; the first occurrence
        # of each key, in member order, is a node of the batch.
        offset = torch.arange(num_pivots, device=neighbor.device) * num_nodes
        keys = (members + offset.view(-1, 1)).view(-1)
        sorted_keys, perm = torch.sort(keys, stable=True)
        is_first = torch.ones_like(sorted_keys, dtype=torch.bool)
        is_first[1:] = sorted_keys[1:] != sorted_keys[:-1]
        unique_keys = sorted_keys[is_first]
        order = torch.argsort(perm[is_first])
        node_keys = unique_keys[order]
        n_id = node_keys % num_nodes
        batch = node_keys // num_nodes
        position_of_unique = torch.empty_like(order)
        position_of_unique[order] = torch.arange(order.numel(),
                                                 device=order.device)

        def local(query_keys: Tensor) -> tuple[Tensor, Tensor]:
            position = torch.searchsorted(unique_keys, query_keys).clamp(
                max=unique_keys.numel() - 1)
            found = unique_keys[position] == query_keys
            return position_of_unique[position], found

        sizes = torch.bincount(batch, minlength=num_pivots)
        ptr = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)])
        pivot_index = local(pivots + offset)[0]
        one_hop_index = local((one_hop + offset.view(-1, 1)).view(-1))[0]

        linked = nearest_others(neighbor, n_id, num_links)
        target, found = local(linked + (batch * num_nodes).view(-1, 1))
        source = torch.arange(n_id.numel(), device=n_id.device).view(
            -1, 1).expand_as(linked)
        pairs = torch.stack([source[found], target[found]])
        edge_index = coalesce(torch.cat([pairs, pairs.flip(0)], dim=1),
                              num_nodes=n_id.numel())
        edge_weight = row_normalize(
            edge_index, torch.ones(edge_index.size(1), device=n_id.device),
            n_id.numel())
        return Batch(edge_index=edge_index, edge_weight=edge_weight,
                     n_id=n_id, pivot_index=pivot_index,
                     one_hop_index=one_hop_index, batch=batch, ptr=ptr,
                     num_nodes=n_id.numel())

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(k_at_hop={self.k_at_hop}, '
                f'active_connection={self.active_connection})')
