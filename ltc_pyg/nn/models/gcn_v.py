r"""GCN-V, the confidence estimator of "Learning to Cluster Faces via
Confidence and Connectivity Estimation" (`Yang et al., CVPR 2020
<https://arxiv.org/abs/2004.00445>`_)."""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Linear, PReLU, Sequential
from torch_geometric.nn import GraphConv
from torch_geometric.typing import Adj, OptTensor, PairTensor

from ltc_pyg.nn.conv.requirements import (
    ConvFactory,
    ConvHook,
    check_conv,
)

__all__ = ['GCNV', 'GCNVOutput', 'convert_original_gcn_v',
           'convert_graph_conv', 'convert_head']


class GCNVOutput(NamedTuple):
    r"""``confidence`` ``[N]`` and the conv's hidden features ``hidden``
    ``[N, H]`` (after ReLU), which GCN-E and the ``use_gcn_feat`` variant
    reuse."""
    confidence: Tensor
    hidden: Tensor


class GCNV(ConvHook, torch.nn.Module):
    r"""One graph convolution over the affinity graph and a regression head,
    one confidence per node:

    .. math::
        \mathbf{h}_i &= \mathrm{ReLU}\big(\mathbf{W}[\mathbf{x}_i \,\|\,
        \textstyle\sum_j a_{ij}\mathbf{x}_j] + \mathbf{b}\big) \\
        c_i &= \mathbf{w}_2^\top \mathrm{PReLU}(\mathbf{W}_1 \mathbf{h}_i +
        \mathbf{b}_1) + b_2

    with :math:`a_{ij}` the row-normalised, symmetric (element-wise max),
    self-looped kNN affinity. The convolution is PyG's
    :class:`~torch_geometric.nn.conv.GraphConv` (``aggr='add'``) fed the
    row-normalised weights by default; given a sparse ``adj_t`` it
    aggregates with one sparse-dense product and never builds per-edge
    messages. Any layer that takes the same inputs can replace it
    (``conv``).

    Args:
        in_channels (int): Feature size. (default: ``256``)
        hidden_channels (int): Hidden size. (default: ``512``)
        dropout (float, optional): Dropout after the convolution's ReLU.
            (default: ``0.0``)
        conv (callable, optional): The convolution, ``conv(in_channels,
            hidden_channels)``: a :class:`~torch_geometric.nn.conv.
            MessagePassing` class or factory, or override
            :meth:`init_conv`. It must take bipartite input with a sparse
            ``adj_t`` and use edge weights (checked here, see
            :func:`~ltc_pyg.nn.conv.check_conv`).
            (default: :class:`~torch_geometric.nn.conv.GraphConv`)

    Shapes:
        - **input:** ``x`` :math:`(N, F_{in})`, or a pair
          (:math:`(N_{src}, F_{in})`, :math:`(N_{dst}, F_{in})`) with a
          bipartite ``adj_t`` :math:`(N_{dst}, N_{src})`; ``edge_index``
          :math:`(2, E)` or sparse ``adj_t``; ``edge_weight`` :math:`(E)`
        - **output:** :class:`GCNVOutput` of :math:`(N_{dst})` and
          :math:`(N_{dst}, H)`
    """
    def __init__(self, in_channels: int = 256, hidden_channels: int = 512,
                 dropout: float = 0.0, conv: ConvFactory = GraphConv
                 ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.dropout = dropout
        self.conv_factory = conv
        self.conv = self.init_conv(in_channels, hidden_channels)
        check_conv(self.conv, in_channels, hidden_channels, 'GCNV',
                   bipartite=True)
        self.head = Sequential(Linear(hidden_channels, hidden_channels),
                               PReLU(hidden_channels),
                               Linear(hidden_channels, 1))

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()
        for layer in self.head:
            if hasattr(layer, 'reset_parameters'):
                layer.reset_parameters()

    def forward(self, x: Tensor | PairTensor, edge_index: Adj,
                edge_weight: OptTensor = None) -> GCNVOutput:
        hidden = self.conv(x, edge_index, edge_weight).relu()
        hidden = F.dropout(hidden, self.dropout, self.training)
        return GCNVOutput(self.head(hidden).view(-1), hidden)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'hidden_channels={self.hidden_channels}, '
                f'dropout={self.dropout})')


def convert_graph_conv(weight: Tensor, bias: Tensor, prefix: str
                       ) -> dict[str, Tensor]:
    r"""An original ``(2 in, out)`` graph-convolution weight, applied there
    as ``[x || Ax] @ W + b``, as the keys of PyG
    :class:`~torch_geometric.nn.conv.GraphConv` ``prefix`` (``lin_root``
    takes the first half, ``lin_rel`` the second and the bias)."""
    half = weight.size(0) // 2
    return {f'{prefix}.lin_root.weight': weight[:half].t().contiguous(),
            f'{prefix}.lin_rel.weight': weight[half:].t().contiguous(),
            f'{prefix}.lin_rel.bias': bias}


def convert_head(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    r"""The original ``classifier.*`` keys as ``head.*``."""
    return {key.replace('classifier.', 'head.'): value
            for key, value in state_dict.items()
            if key.startswith('classifier.')}


def convert_original_gcn_v(state_dict: dict[str, Tensor]
                           ) -> dict[str, Tensor]:
    r"""Maps the original ``gcn_v`` state dict (``conv1.weight (2F, H)``,
    ``classifier.{0,1,2}``) onto :class:`~ltc_pyg.nn.models.GCNV`."""
    expected = {'conv1.weight', 'conv1.bias', 'classifier.0.weight',
                'classifier.0.bias', 'classifier.1.weight',
                'classifier.2.weight', 'classifier.2.bias'}
    if set(state_dict) != expected:
        raise ValueError(f'Not an original gcn_v state dict: expected keys '
                         f'{sorted(expected)} (got {sorted(state_dict)})')
    return {**convert_graph_conv(state_dict['conv1.weight'],
                                  state_dict['conv1.bias'], 'conv'),
            **convert_head(state_dict)}
