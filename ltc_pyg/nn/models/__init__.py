r"""The models of the learn-to-cluster family, one module each, built from
message-passing layers and usable in any PyG workflow. Each module also
holds the converter of the original project's released weights to its
model."""

from ltc_pyg.nn.models.edge_scorer import EdgeScorer, NeighborhoodContext
from ltc_pyg.nn.models.gcn_d import GCND, convert_dsgcn_state_dict
from ltc_pyg.nn.models.gcn_e import GCNE, convert_original_gcn_e
from ltc_pyg.nn.models.gcn_s import GCNS, seed_products
from ltc_pyg.nn.models.gcn_v import GCNV, GCNVOutput, convert_original_gcn_v
from ltc_pyg.nn.models.lgcn import LGCN, convert_original_lgcn

__all__: list[str] = []
__all__ += ['GCNV', 'GCNVOutput', 'GCNE']
__all__ += ['GCND', 'GCNS', 'seed_products']
__all__ += ['LGCN']
__all__ += ['EdgeScorer', 'NeighborhoodContext']
__all__ += ['convert_original_gcn_v', 'convert_original_gcn_e',
            'convert_dsgcn_state_dict', 'convert_original_lgcn']
