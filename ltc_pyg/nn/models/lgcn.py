r"""L-GCN, the linkage predictor of "Linkage Based Face Clustering via Graph
Convolution Network" (`Wang et al., CVPR 2019
<https://arxiv.org/abs/1903.11306>`_)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import BatchNorm1d, Linear, PReLU, Sequential
from torch_geometric.nn import GraphConv
from torch_geometric.typing import Adj, OptTensor

from ltc_pyg.nn.conv.requirements import (
    ConvFactory,
    ConvHook,
    conv_stack,
)
from ltc_pyg.nn.models.gcn_v import convert_graph_conv

__all__ = ['LGCN', 'convert_original_lgcn']


class LGCN(ConvHook, torch.nn.Module):
    r"""Predicts, on instance pivot subgraphs
    (:class:`~ltc_pyg.proposals.PivotSubgraphs`), whether each one-hop node
    belongs to its pivot's identity.

    Inputs are batch-normalised (no affine part), then passed through graph
    convolutions

    .. math::
        \mathbf{h}^{(l+1)}_i = \mathrm{ReLU}\big(\mathbf{W}^{(l)}
        [\mathbf{h}^{(l)}_i \,\|\, \textstyle\sum_j a_{ij}
        \mathbf{h}^{(l)}_j] + \mathbf{b}^{(l)}\big)

    with row-normalised weights :math:`a_{ij}` (PyG's
    :class:`~torch_geometric.nn.conv.GraphConv`, ``aggr='add'``), and a
    classifier :math:`\mathrm{Linear}\to\mathrm{PReLU}\to\mathrm{Linear}`
    gives two logits (not linked, linked) per one-hop node.

    Subgraphs are concatenated, not padded, so in training the batch
    statistics of the input normalisation cover real nodes only (the
    original's padded batches also counted the zero padding rows); in
    evaluation both use the running statistics and agree.

    Args:
        in_channels (int, optional): Feature size. (default: ``256``)
        hidden_channels (sequence of int, optional): Output sizes of the graph
            convolutions. (default: ``(512, 512, 256, 256)``)
        conv (callable, optional): Builds each convolution,
            ``conv(in, out)`` (see :class:`~ltc_pyg.nn.models.GCNV`).
            (default: :class:`~torch_geometric.nn.conv.GraphConv`)

    Shapes:
        - **input:** ``x`` :math:`(N, F_{in})`; ``edge_index``
          :math:`(2, E)` or sparse ``adj_t`` :math:`(N, N)`;
          ``one_hop_index`` :math:`(M)`; ``edge_weight`` :math:`(E)`
        - **output:** logits :math:`(M, 2)`
    """
    def __init__(self, in_channels: int = 256,
                 hidden_channels: Sequence[int] = (512, 512, 256, 256),
                 conv: ConvFactory = GraphConv) -> None:
        super().__init__()
        hidden_channels = tuple(hidden_channels)
        if not hidden_channels:
            raise ValueError("'hidden_channels' needs at least one size")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.norm = BatchNorm1d(in_channels, affine=False)
        sizes = (in_channels, ) + hidden_channels
        self.conv_factory = conv
        self.convs = conv_stack(self.init_conv, sizes, 'LGCN')
        out = hidden_channels[-1]
        self.head = Sequential(Linear(out, out), PReLU(out), Linear(out, 2))

    def reset_parameters(self) -> None:
        self.norm.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()
        for layer in self.head:
            if hasattr(layer, 'reset_parameters'):
                layer.reset_parameters()

    def embed(self, x: Tensor, edge_index: Adj,
              edge_weight: OptTensor = None) -> Tensor:
        r"""The node features after the last graph convolution,
        :math:`(N, F_{out})`."""
        x = self.norm(x)
        for conv in self.convs:
            x = conv(x, edge_index, edge_weight).relu()
        return x

    def forward(self, x: Tensor, edge_index: Adj, one_hop_index: Tensor,
                edge_weight: OptTensor = None) -> Tensor:
        hidden = self.embed(x, edge_index, edge_weight)
        return self.head(hidden[one_hop_index])

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'hidden_channels={self.hidden_channels})')


def convert_original_lgcn(state_dict: dict[str, Tensor]
                          ) -> dict[str, Tensor]:
    r"""Maps the original ``lgcn`` state dict (``bn0``, ``conv1..4`` with
    ``(2 in, out)`` weights applied as ``[x || Ax] @ W + b``,
    ``classifier.{0,1,2}``) onto :class:`~ltc_pyg.nn.models.LGCN`."""
    convs = sorted((key for key in state_dict
                    if key.startswith('conv') and key.endswith('.weight')),
                   key=lambda key: int(key[4:-7]))
    if not convs or 'bn0.running_mean' not in state_dict:
        raise ValueError(f"Not an original lgcn state dict: expected 'bn0.*' "
                         f"and 'conv<i>.weight' keys (got "
                         f'{sorted(state_dict)})')
    converted = {}
    for key, value in state_dict.items():
        if key.startswith('bn0.'):
            converted[f'norm.{key[4:]}'] = value
        elif key.startswith('classifier.'):
            converted[f'head.{key[11:]}'] = value
    for i, key in enumerate(convs):
        converted.update(convert_graph_conv(
            state_dict[key], state_dict[f'{key[:-7]}.bias'], f'convs.{i}'))
    return converted
