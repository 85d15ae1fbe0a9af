r"""GCN-S, the proposal segmenter of "Learning to Cluster Faces on an
Affinity Graph" (`Yang et al., CVPR 2019
<https://arxiv.org/abs/1904.02749>`_)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch_geometric.typing import Adj, OptTensor

from ltc_pyg.nn.conv.ds_conv import DSConv
from ltc_pyg.nn.conv.requirements import ConvFactory
from ltc_pyg.nn.models.gcn_d import GCND

__all__ = ['GCNS', 'seed_products']


def seed_products(x: Tensor, seed_mask: Tensor,
                  batch: OptTensor = None) -> Tensor:
    r"""Each node's features times its graph's seed features, scaled by
    the feature size :math:`D`:

    .. math::
        \mathbf{x}'_i = D \, \mathbf{x}_i \odot \mathbf{x}_{s(i)},
        \qquad \sum_d x'_{i,d} = D \cos(\mathbf{x}_i, \mathbf{x}_{s(i)})
        \text{ for unit features,}

    where :math:`s(i)` is the seed of node :math:`i`'s graph; the scale
    keeps the entries of order one.

    Args:
        x (Tensor): ``[N, D]`` features.
        seed_mask (Tensor): ``[N]``, nonzero at exactly one node per graph.
        batch (Tensor, optional): ``[N]`` graph of each node (one graph if
            omitted).

    Returns:
        Tensor: ``[N, D]``.
    """
    if batch is None:
        batch = x.new_zeros(x.size(0), dtype=torch.long)
    is_seed = seed_mask.bool()
    num_graphs = int(batch.max()) + 1 if batch.numel() else 0
    seeds_per_graph = torch.bincount(batch[is_seed], minlength=num_graphs)
    if bool((seeds_per_graph != 1).any()):
        bad = int((seeds_per_graph != 1).nonzero()[0])
        raise ValueError(f'Every graph needs exactly one seed node (graph '
                         f'{bad} has {int(seeds_per_graph[bad])})')
    seed_x = x.new_zeros(num_graphs, x.size(1)).index_copy_(
        0, batch[is_seed], x[is_seed])
    return x * seed_x[batch] * x.size(1)


class GCNS(GCND):
    r"""Labels each node of a proposal as a member (class 1) or an outlier
    (class 0): the convs of :class:`GCND` without pooling, a per-node
    two-way head and a log-softmax.

    With ``use_seed`` an indicator column marks the proposal's seed node
    (the member whose identity the proposal should keep); it is appended to
    the features, so the first layer takes ``in_channels + 1`` inputs.

    With ``compare_to_seed`` each node's features are first replaced by
    their elementwise product with the seed's (:func:`seed_products`):
    a linear map of them can then express the cosine similarity to the
    seed, which a linear map of the raw features and a seed column cannot.
    The original model (``False``) gives near-constant member probabilities
    when trained on a few hundred impure proposals; see
    ``benchmarks/README.md``.

    Args:
        in_channels (int, optional): Feature size, without the seed column.
            (default: ``256``)
        hidden_channels (sequence of int, optional): Conv sizes.
            (default: ``(512, 64)``)
        dropout (float, optional): Node-row dropout in training.
            (default: ``0.5``)
        use_seed (bool, optional): Take a seed indicator input.
            (default: :obj:`True`)
        compare_to_seed (bool, optional): Feed the products with the seed's
            features instead of the raw features (needs ``use_seed``).
            (default: :obj:`False`, the original model)
        conv (callable, optional): Each convolution (see :class:`GCND`).
            (default: :class:`~ltc_pyg.nn.conv.DSConv`)

    Shapes:
        - **input:** ``x`` :math:`(N, F_{in})`; ``edge_index``
          :math:`(2, E)` or sparse ``adj_t``; ``edge_weight`` :math:`(E)`;
          ``seed_mask`` :math:`(N)` (with ``use_seed``; one seed per
          proposal with ``compare_to_seed``); ``batch`` :math:`(N)`
        - **output:** :math:`(N, 2)` log-probabilities
    """
    out_channels = 2

    def __init__(self, in_channels: int = 256,
                 hidden_channels: Sequence[int] = (512, 64),
                 dropout: float = 0.5, use_seed: bool = True,
                 compare_to_seed: bool = False,
                 conv: ConvFactory = DSConv) -> None:
        if compare_to_seed and not use_seed:
            raise ValueError('GCNS(compare_to_seed=True) needs use_seed=True')
        super().__init__(in_channels + int(use_seed), hidden_channels,
                         dropout, conv)
        self.in_channels = in_channels
        self.use_seed = use_seed
        self.compare_to_seed = compare_to_seed

    def forward(self, x: Tensor, edge_index: Adj,
                edge_weight: OptTensor = None, seed_mask: OptTensor = None,
                batch: OptTensor = None) -> Tensor:
        if self.use_seed:
            if seed_mask is None:
                raise ValueError('GCNS(use_seed=True) needs seed_mask')
            if self.compare_to_seed:
                x = seed_products(x, seed_mask, batch)
            x = torch.cat([x, seed_mask.view(-1, 1).to(x.dtype)], dim=-1)
        out = self.head(self.embed(x, edge_index, edge_weight))
        return torch.log_softmax(out, dim=-1)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'hidden_channels={list(self.hidden_channels)}, '
                f'dropout={self.dropout}, use_seed={self.use_seed}, '
                f'compare_to_seed={self.compare_to_seed})')
