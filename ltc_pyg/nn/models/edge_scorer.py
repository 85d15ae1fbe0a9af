r"""A learned edge scorer for the kNN graph: the probability that the two
ends of a kNN edge are the same identity, from the edge's features and
the neighbourhoods of its two ends.

It is the learned part of the ``learned-edges`` method, whose edges the
map equation then clusters (:mod:`ltc_pyg.pipelines.edges`).
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn import MLP, MessagePassing


class NeighborhoodContext(MessagePassing):
    r"""Summarises each node's incoming edges: the mean and the maximum of
    their features, mapped to a context vector,

    .. math::
        \mathbf{h}_i = \mathrm{ReLU}\left(\mathbf{W}\left[
        \operatorname{mean}_{j \in \mathcal{N}(i)} \mathbf{e}_{ji} \,\|\,
        \max_{j \in \mathcal{N}(i)} \mathbf{e}_{ji}\right] + \mathbf{b}
        \right).

    For a kNN row it describes how the node's neighbourhood looks (how
    similar, how shared, how reciprocal its neighbours are), which tells a
    dense identity from a sparse one or an outlier.

    Args:
        edge_channels (int): Edge feature size :math:`F_e`.
        out_channels (int): Context size :math:`H`.

    Shapes:
        - **input:** ``edge_index`` :math:`(2, E)`, ``edge_attr``
          :math:`(E, F_e)`, ``num_nodes`` :math:`N`
        - **output:** :math:`(N, H)`
    """
    def __init__(self, edge_channels: int, out_channels: int) -> None:
        super().__init__(aggr=['mean', 'max'])
        self.edge_channels = edge_channels
        self.out_channels = out_channels
        self.lin = torch.nn.Linear(2 * edge_channels, out_channels)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.lin.reset_parameters()

    def forward(self, edge_index: Tensor, edge_attr: Tensor,
                num_nodes: int) -> Tensor:
        summary = self.propagate(edge_index, edge_attr=edge_attr,
                                 size=(num_nodes, num_nodes))
        return self.lin(summary).relu()

    def message(self, edge_attr: Tensor) -> Tensor:
        return edge_attr

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.edge_channels}, '
                f'{self.out_channels})')


class EdgeScorer(torch.nn.Module):
    r"""Same-identity logits of edges ``j -> i``,

    .. math::
        \ell_{ji} = \mathrm{MLP}\left([\mathbf{e}_{ji} \,\|\, \mathbf{h}_j
        \,\|\, \mathbf{h}_i]\right),

    with :math:`\mathbf{h}` the :class:`NeighborhoodContext` of each end
    (left out with ``context=False``: then each edge is scored from its own
    features alone).
    Edge features are standardised inside the model (``feature_mean`` and
    ``feature_std``, set from the training edges by :meth:`set_scaling`
    and saved with the weights), so that the scorer takes raw features.

    Args:
        edge_channels (int): Edge feature size :math:`F_e`.
        hidden_channels (int, optional): Context and hidden size.
            (default: ``32``)
        context (bool, optional): Read the ends' neighbourhoods.
            (default: :obj:`True`)

    Shapes:
        - **input:** ``edge_index`` :math:`(2, E)`, ``edge_attr``
          :math:`(E, F_e)`, ``num_nodes`` :math:`N`; optionally
          ``score_index`` :math:`(E')`, the edges to score
        - **output:** logits :math:`(E)` (or :math:`(E')`)
    """
    def __init__(self, edge_channels: int, hidden_channels: int = 32,
                 context: bool = True) -> None:
        super().__init__()
        self.edge_channels = edge_channels
        self.hidden_channels = hidden_channels
        self.register_buffer('feature_mean', torch.zeros(edge_channels))
        self.register_buffer('feature_std', torch.ones(edge_channels))
        self.context = (NeighborhoodContext(edge_channels, hidden_channels)
                        if context else None)
        context_channels = 2 * hidden_channels if context else 0
        self.head = MLP([edge_channels + context_channels, hidden_channels,
                         hidden_channels, 1], norm=None)

    def set_scaling(self, edge_attr: Tensor) -> None:
        r"""Standardises features by the mean and standard deviation of
        ``edge_attr`` (the training edges)."""
        self.feature_mean.copy_(edge_attr.mean(dim=0))
        self.feature_std.copy_(edge_attr.std(dim=0).clamp_min(1e-6))

    def scale(self, edge_attr: Tensor) -> Tensor:
        r"""Standardised edge features."""
        return (edge_attr - self.feature_mean) / self.feature_std

    def node_context(self, edge_index: Tensor, scaled_attr: Tensor,
                     num_nodes: int) -> Tensor | None:
        r"""``[N, H]`` contexts of standardised edges (:obj:`None` without
        context)."""
        if self.context is None:
            return None
        return self.context(edge_index, scaled_attr, num_nodes)

    def score(self, edge_index: Tensor, scaled_attr: Tensor,
              context: Tensor | None) -> Tensor:
        r"""Logits of standardised edges, given the node contexts."""
        if context is not None:
            source, target = edge_index
            scaled_attr = torch.cat([scaled_attr, context[source],
                                     context[target]], dim=1)
        return self.head(scaled_attr).view(-1)

    def forward(self, edge_index: Tensor, edge_attr: Tensor, num_nodes: int,
                score_index: Tensor | None = None) -> Tensor:
        scaled = self.scale(edge_attr)
        context = self.node_context(edge_index, scaled, num_nodes)
        if score_index is not None:
            edge_index, scaled = edge_index[:, score_index], scaled[
                score_index]
        return self.score(edge_index, scaled, context)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.edge_channels}, '
                f'hidden_channels={self.hidden_channels}, '
                f'context={self.context is not None})')
