r"""The graph convolution of DS-GCN (GCN-D / GCN-S)."""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.typing import Adj, OptTensor
from torch_geometric.utils import is_sparse, scatter, spmm

__all__ = ['DSConv']


class DSConv(MessagePassing):
    r"""The DS-GCN layer of "Learning to Cluster Faces on an Affinity Graph"
    (`Yang et al., CVPR 2019 <https://arxiv.org/abs/1904.02749>`_): a
    linear map, an affinity-weighted sum normalised by the weights' sum, and
    a ReLU; no bias, no separate self term (self-loops carry it).

    .. math::
        \mathbf{x}'_i = \mathrm{ReLU}\left(
        \frac{\sum_{j} a_{j,i}\, \mathbf{W}\mathbf{x}_j}
        {\sum_{j} a_{j,i}}\right)

    The division is applied even when the weights are already
    row-normalised, as in the original. Targets without incoming weight
    get zeros.

    Args:
        in_channels (int): Input size :math:`F_{in}`.
        out_channels (int): Output size :math:`F_{out}`.

    Shapes:
        - **input:** ``x`` :math:`(N, F_{in})`; ``edge_index``
          :math:`(2, E)` or sparse ``adj_t`` :math:`(N, N)`;
          ``edge_weight`` :math:`(E)` (ones if omitted)
        - **output:** :math:`(N, F_{out})`
    """
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(aggr='add')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.lin = Linear(in_channels, out_channels, bias=False,
                          weight_initializer='glorot')
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.lin.reset_parameters()

    def forward(self, x: Tensor, edge_index: Adj,
                edge_weight: OptTensor = None) -> Tensor:
        num_nodes = x.size(0)
        if is_sparse(edge_index):
            degree = spmm(edge_index, x.new_ones(num_nodes, 1)).view(-1)
        else:
            if edge_weight is None:
                edge_weight = x.new_ones(edge_index.size(1))
            degree = scatter(edge_weight, edge_index[1], dim=0,
                             dim_size=num_nodes, reduce='sum')
        out = self.propagate(edge_index, x=self.lin(x),
                             edge_weight=edge_weight)
        degree = torch.where(degree == 0, torch.ones_like(degree), degree)
        return torch.relu(out / degree.unsqueeze(-1))

    def message(self, x_j: Tensor, edge_weight: OptTensor) -> Tensor:
        return x_j if edge_weight is None else x_j * edge_weight.unsqueeze(-1)

    def message_and_aggregate(self, adj_t: Adj, x: Tensor) -> Tensor:
        return spmm(adj_t, x, reduce=self.aggr)
