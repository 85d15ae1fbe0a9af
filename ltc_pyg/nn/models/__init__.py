r"""The models of the learn-to-cluster family, one module each, built from
message-passing layers and usable in any PyG workflow."""

from ltc_pyg.nn.models.edge_scorer import EdgeScorer, NeighborhoodContext
from ltc_pyg.nn.models.gcn_d import GCND
from ltc_pyg.nn.models.gcn_e import GCNE
from ltc_pyg.nn.models.gcn_s import GCNS, seed_products
from ltc_pyg.nn.models.gcn_v import GCNV, GCNVOutput
from ltc_pyg.nn.models.lgcn import LGCN

__all__: list[str] = []
__all__ += ['GCNV', 'GCNVOutput', 'GCNE']
__all__ += ['GCND', 'GCNS', 'seed_products']
__all__ += ['LGCN']
__all__ += ['EdgeScorer', 'NeighborhoodContext']
