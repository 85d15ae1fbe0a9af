r"""Graph neural network building blocks: ``conv/`` holds the
:class:`~torch_geometric.nn.conv.MessagePassing` layers, ``models/`` the
models of the learn-to-cluster papers (GCN-D, GCN-S, GCN-V, GCN-E, L-GCN)."""
from ltc_pyg.nn.conv import DSConv
from ltc_pyg.nn.models import (
    GCND,
    GCNE,
    GCNS,
    GCNV,
    LGCN,
    EdgeScorer,
    GCNVOutput,
    NeighborhoodContext,
    seed_products,
)

__all__ = ['DSConv', 'GCNV', 'GCNVOutput', 'GCNE', 'GCND', 'GCNS',
           'seed_products', 'LGCN', 'EdgeScorer', 'NeighborhoodContext']
