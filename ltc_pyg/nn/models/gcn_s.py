r"""GCN-S, the proposal segmenter of "Learning to Cluster Faces on an
Affinity Graph" (`Yang et al., CVPR 2019
<https://arxiv.org/abs/1904.02749>`_)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch_geometric.typing import Adj, OptTensor

from ltc_pyg.nn.models.gcn_d import GCND

__all__ = ['GCNS']


class GCNS(GCND):
    r"""Labels each node of a proposal as a member (class 1) or an outlier
    (class 0): the convs of :class:`GCND` without pooling, a per-node
    two-way head and a log-softmax.

    With ``use_seed`` an indicator column marks the proposal's seed node
    (the member whose identity the proposal should keep); it is appended to
    the features, so the first layer takes ``in_channels + 1`` inputs.

    Args:
        in_channels (int, optional): Feature size, without the seed column.
            (default: ``256``)
        hidden_channels (sequence of int, optional): Conv sizes.
            (default: ``(512, 64)``)
        dropout (float, optional): Node-row dropout in training.
            (default: ``0.5``)
        use_seed (bool, optional): Take a seed indicator input.
            (default: :obj:`True`)

    Shapes:
        - **input:** ``x`` :math:`(N, F_{in})`; ``edge_index``
          :math:`(2, E)` or sparse ``adj_t``; ``edge_weight`` :math:`(E)`;
          ``seed_mask`` :math:`(N)` (with ``use_seed``)
        - **output:** :math:`(N, 2)` log-probabilities
    """
    out_channels = 2

    def __init__(self, in_channels: int = 256,
                 hidden_channels: Sequence[int] = (512, 64),
                 dropout: float = 0.5, use_seed: bool = True) -> None:
        super().__init__(in_channels + int(use_seed), hidden_channels,
                         dropout)
        self.in_channels = in_channels
        self.use_seed = use_seed

    def forward(self, x: Tensor, edge_index: Adj,
                edge_weight: OptTensor = None,
                seed_mask: OptTensor = None) -> Tensor:
        if self.use_seed:
            if seed_mask is None:
                raise ValueError('GCNS(use_seed=True) needs seed_mask')
            x = torch.cat([x, seed_mask.view(-1, 1).to(x.dtype)], dim=-1)
        out = self.head(self.embed(x, edge_index, edge_weight))
        return torch.log_softmax(out, dim=-1)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'hidden_channels={list(self.hidden_channels)}, '
                f'dropout={self.dropout}, use_seed={self.use_seed})')
