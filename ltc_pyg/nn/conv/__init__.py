r"""Message-passing layers. GCN-V, GCN-E and L-GCN use PyG's own
:class:`~torch_geometric.nn.conv.GraphConv` on row-normalised affinities
(:math:`\mathbf{W}[\mathbf{x}_i \,\|\, \sum_j a_{ij}\mathbf{x}_j]
+ \mathbf{b}`);
layers PyG does not have live here, one module each. Every model takes its
layers through a ``conv`` argument (see :mod:`.requirements`)."""

from ltc_pyg.nn.conv.ds_conv import DSConv
from ltc_pyg.nn.conv.requirements import (
    ConvFactory,
    ConvHook,
    check_conv,
    conv_by_name,
    conv_stack,
)

__all__: list[str] = []
__all__ += ['DSConv']
__all__ += ['ConvFactory', 'ConvHook', 'conv_by_name', 'check_conv',
            'conv_stack']
