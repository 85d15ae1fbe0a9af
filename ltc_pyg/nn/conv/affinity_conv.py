r"""PyG's :class:`~torch_geometric.nn.conv.GraphConv` made safe for
reduced-precision inference."""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn import GraphConv
from torch_geometric.typing import Adj, OptPairTensor
from torch_geometric.utils import spmm

__all__ = ['AffinityConv']


class AffinityConv(GraphConv):
    r""":class:`~torch_geometric.nn.conv.GraphConv`,

    .. math::
        \mathbf{x}'_i = \mathbf{W}_1 \mathbf{x}_i + \mathbf{W}_2
        \sum_{j} a_{j,i} \mathbf{x}_j + \mathbf{b},

    whose sparse aggregation always runs in float32, outside any autocast.
    Under ``torch.autocast(dtype=torch.bfloat16)`` the two linear maps then
    run in bfloat16 (about 10x faster on CPUs with AMX, measured in
    ``benchmarks/README.md``) while torch's CPU sparse-matrix kernels, which
    have no bfloat16, still get float32. Without autocast it is
    :class:`~torch_geometric.nn.conv.GraphConv`, with the same parameters
    and ``state_dict`` keys.

    Args:
        in_channels (int): Input size :math:`F_{in}`.
        out_channels (int): Output size :math:`F_{out}`.
        **kwargs: Passed on to
            :class:`~torch_geometric.nn.conv.GraphConv` (e.g. ``aggr``).

    Shapes:
        - **input:** ``x`` :math:`(N, F_{in})`; ``edge_index``
          :math:`(2, E)` or sparse ``adj_t`` :math:`(N, N)`;
          ``edge_weight`` :math:`(E)`
        - **output:** :math:`(N, F_{out})`
    """
    def message_and_aggregate(self, edge_index: Adj,
                              x: OptPairTensor) -> Tensor:
        with torch.autocast(device_type=x[0].device.type, enabled=False):
            return spmm(edge_index, x[0].float(), reduce=self.aggr)
