r"""GCN-E, the connectivity estimator of "Learning to Cluster Faces via
Confidence and Connectivity Estimation" (`Yang et al., CVPR 2020
<https://arxiv.org/abs/2004.00445>`_)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Linear, PReLU, Sequential
from torch_geometric.nn import GraphConv
from torch_geometric.typing import Adj, OptTensor

from ltc_pyg.nn.conv.requirements import (
    ConvFactory,
    ConvHook,
    conv_stack,
)
from ltc_pyg.nn.models.gcn_v import convert_graph_conv, convert_head

__all__ = ['GCNE', 'convert_original_gcn_e']


class GCNE(ConvHook, torch.nn.Module):
    r"""Four graph convolutions and a two-way classifier per node, applied to
    candidate subgraphs (:mod:`ltc_pyg.proposals.candidates`): for each
    candidate ``j`` of a centre, the logits of "``j`` has the centre's
    identity". Each layer is

    .. math::
        \mathbf{x}'_i = \mathrm{ReLU}\big(\mathbf{W}[\mathbf{x}_i \,\|\,
        \textstyle\sum_j a_{ij}\mathbf{x}_j] + \mathbf{b}\big)

    (PyG :class:`~torch_geometric.nn.conv.GraphConv` on row-normalised
    weights), with widths ``in -> H -> H -> H/2 -> H/2``, then
    ``Linear(H/2, H/2) -> PReLU -> Linear(H/2, 2)``. Subgraphs are batched
    by concatenation (PyG :class:`~torch_geometric.data.Batch`), so a
    subgraph gives the same output alone and in a batch.

    Args:
        in_channels (int): Feature size (GCN-V's hidden size when its
            features are used). (default: ``512``)
        hidden_channels (int): :math:`H`. (default: ``512``)
        dropout (float, optional): Dropout after each convolution.
            (default: ``0.0``)
        conv (callable, optional): Builds each convolution,
            ``conv(in, out)`` (see :class:`~ltc_pyg.nn.models.GCNV`).
            (default: :class:`~torch_geometric.nn.conv.GraphConv`)

    Shapes:
        - **input:** ``x`` :math:`(N, F_{in})`; ``edge_index``
          :math:`(2, E)` or sparse ``adj_t``; ``edge_weight`` :math:`(E)`
        - **output:** logits :math:`(N, 2)`
    """
    def __init__(self, in_channels: int = 512, hidden_channels: int = 512,
                 dropout: float = 0.0, conv: ConvFactory = GraphConv
                 ) -> None:
        super().__init__()
        if hidden_channels < 2 or hidden_channels % 2:
            raise ValueError(f"'hidden_channels' must be even and at least 2 "
                             f'(got {hidden_channels})')
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.dropout = dropout
        half = hidden_channels // 2
        widths = [in_channels, hidden_channels, hidden_channels, half, half]
        self.conv_factory = conv
        self.convs = conv_stack(self.init_conv, widths, 'GCNE')
        self.head = Sequential(Linear(half, half), PReLU(half),
                               Linear(half, 2))

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()
        for layer in self.head:
            if hasattr(layer, 'reset_parameters'):
                layer.reset_parameters()

    def embed(self, x: Tensor, edge_index: Adj,
              edge_weight: OptTensor = None) -> Tensor:
        r"""The node features after the four convolutions, :math:`(N, H/2)`."""
        for conv in self.convs:
            x = conv(x, edge_index, edge_weight).relu()
            x = F.dropout(x, self.dropout, self.training)
        return x

    def forward(self, x: Tensor, edge_index: Adj,
                edge_weight: OptTensor = None) -> Tensor:
        return self.head(self.embed(x, edge_index, edge_weight))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'hidden_channels={self.hidden_channels}, '
                f'dropout={self.dropout})')


def convert_original_gcn_e(state_dict: dict[str, Tensor]
                           ) -> dict[str, Tensor]:
    r"""Maps the original ``gcn_e`` state dict (``conv1..4``,
    ``classifier.{0,1,2}``) onto :class:`~ltc_pyg.nn.models.GCNE`."""
    convs = [f'conv{i}.weight' for i in range(1, 5)]
    if not all(key in state_dict for key in convs):
        raise ValueError(f'Not an original gcn_e state dict: expected '
                         f'{convs} (got {sorted(state_dict)})')
    converted = convert_head(state_dict)
    for i in range(4):
        converted.update(convert_graph_conv(
            state_dict[f'conv{i + 1}.weight'], state_dict[f'conv{i + 1}.bias'],
            f'convs.{i}'))
    return converted
