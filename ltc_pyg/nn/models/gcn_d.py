r"""GCN-D, the proposal detector of "Learning to Cluster Faces on an Affinity
Graph" (`Yang et al., CVPR 2019 <https://arxiv.org/abs/1904.02749>`_)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Linear
from torch_geometric.nn import global_max_pool
from torch_geometric.typing import Adj, OptTensor

from ltc_pyg.nn.conv.ds_conv import DSConv
from ltc_pyg.nn.conv.requirements import ConvFactory, ConvHook, conv_stack

__all__ = ['GCND', 'convert_dsgcn_state_dict']


def node_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    r"""Zeroes whole node rows with probability ``p`` (rescaling the rest),
    the original's ``Dropout2d`` on ``(B, N, F)`` batches."""
    if not training or p == 0:
        return x
    return x * F.dropout(x.new_ones(x.size(0), 1), p, training=True)


class GCND(ConvHook, torch.nn.Module):
    r"""Scores a cluster proposal (a small subgraph) by regressing its IoU,
    or IoP, with the best-matching true cluster: stacked
    :class:`~ltc_pyg.nn.conv.DSConv` layers, a global max pool over each
    proposal's nodes and a linear head.

    Proposals are batched PyG-style (disjoint union, ``batch`` vector), never
    padded; a single proposal needs no ``batch``.

    Args:
        in_channels (int, optional): Feature size. (default: ``256``)
        hidden_channels (sequence of int, optional): Sizes of the conv
            layers. (default: ``(512, 64)``)
        dropout (float, optional): Node-row dropout after each conv in
            training (the original's default is ``0.5``).
            (default: ``0.5``)
        conv (callable, optional): Builds each convolution,
            ``conv(in, out)`` (see :class:`~ltc_pyg.nn.models.GCNV`).
            (default: :class:`~ltc_pyg.nn.conv.DSConv`)

    Shapes:
        - **input:** ``x`` :math:`(N, F_{in})`; ``edge_index``
          :math:`(2, E)` or sparse ``adj_t``; ``edge_weight`` :math:`(E)`;
          ``batch`` :math:`(N)`
        - **output:** :math:`(B)` scores
    """
    out_channels = 1

    def __init__(self, in_channels: int = 256,
                 hidden_channels: Sequence[int] = (512, 64),
                 dropout: float = 0.5, conv: ConvFactory = DSConv) -> None:
        super().__init__()
        if not hidden_channels:
            raise ValueError('GCND needs at least one hidden layer')
        if not 0 <= dropout < 1:
            raise ValueError(f'dropout must be in [0, 1) (got {dropout})')
        self.in_channels = in_channels
        self.hidden_channels = tuple(hidden_channels)
        self.dropout = dropout
        sizes = (in_channels, ) + self.hidden_channels
        self.conv_factory = conv
        self.convs = conv_stack(self.init_conv, sizes, type(self).__name__)
        self.head = Linear(sizes[-1], self.out_channels)

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()
        self.head.reset_parameters()

    def embed(self, x: Tensor, edge_index: Adj,
              edge_weight: OptTensor = None) -> Tensor:
        r"""Node features after the conv layers, :math:`(N, H)`."""
        for conv in self.convs:
            x = node_dropout(conv(x, edge_index, edge_weight), self.dropout,
                             self.training)
        return x

    def forward(self, x: Tensor, edge_index: Adj,
                edge_weight: OptTensor = None,
                batch: OptTensor = None) -> Tensor:
        pooled = global_max_pool(self.embed(x, edge_index, edge_weight),
                                 batch)
        return self.head(pooled).view(-1)

    def load_original_state_dict(self, state_dict: Mapping[str, Tensor]
                                 ) -> None:
        r"""Loads the ``state_dict`` of an original DS-GCN checkpoint (see
        :func:`convert_dsgcn_state_dict`)."""
        self.load_state_dict(convert_dsgcn_state_dict(state_dict))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'hidden_channels={list(self.hidden_channels)}, '
                f'dropout={self.dropout})')


def convert_dsgcn_state_dict(state_dict: Mapping[str, Tensor]
                             ) -> dict[str, Tensor]:
    r"""Maps the original DS-GCN keys to ours: ``layers.{i}.gc.weight``
    (``(in, out)``, applied as ``x @ W``) becomes ``convs.{i}.lin.weight``
    (its transpose) and ``classifier.*`` becomes ``head.*``. A
    ``module.`` prefix (DataParallel) is ignored."""
    converted = {}
    for key, value in state_dict.items():
        key = key.removeprefix('module.')
        parts = key.split('.')
        if parts[0] == 'layers' and parts[2:] == ['gc', 'weight']:
            converted[f'convs.{parts[1]}.lin.weight'] = value.t().contiguous()
        elif parts[0] == 'classifier':
            converted['head.' + '.'.join(parts[1:])] = value
        else:
            raise ValueError(f"Unexpected key '{key}' in a DS-GCN checkpoint "
                             f"(expected layers.<i>.gc.weight and "
                             f"classifier.weight/bias)")
    return converted
