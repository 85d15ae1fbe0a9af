r"""Message-passing layers, one module each. L-GCN uses
:class:`AffinityConv`, PyG's :class:`~torch_geometric.nn.conv.GraphConv`
(:math:`\mathbf{W}[\mathbf{x}_i \,\|\, \sum_j a_{ij}\mathbf{x}_j]
+ \mathbf{b}` on row-normalised affinities) with its sparse aggregation
kept in float32 for bfloat16 inference; GCN-V and GCN-E use GraphConv
itself; GCN-D and GCN-S use :class:`DSConv`."""

from ltc_pyg.nn.conv.affinity_conv import AffinityConv
from ltc_pyg.nn.conv.ds_conv import DSConv

__all__: list[str] = []
__all__ += ['AffinityConv', 'DSConv']
