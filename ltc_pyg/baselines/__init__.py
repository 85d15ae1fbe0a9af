r"""Classic clustering baselines on features or on the kNN affinity graph."""
from ltc_pyg.baselines.cdp import cdp_link
from ltc_pyg.baselines.chinese_whispers import chinese_whispers
from ltc_pyg.baselines.dbscan import knn_dbscan
from ltc_pyg.baselines.hac import (
    dense_hac_memory_gb,
    fast_hac,
    similarity_to_distance,
)
from ltc_pyg.baselines.infomap import infomap_clusters, knn_density
from ltc_pyg.baselines.knn_graph import knn_matrix
from ltc_pyg.baselines.rank_order import approx_rank_order, rank_order_distance
from ltc_pyg.baselines.sklearn_wrappers import kmeans, mean_shift, spectral

__all__ = [
    'knn_matrix', 'kmeans', 'spectral', 'mean_shift', 'knn_dbscan',
    'fast_hac', 'similarity_to_distance', 'dense_hac_memory_gb',
    'rank_order_distance', 'approx_rank_order', 'chinese_whispers',
    'cdp_link', 'infomap_clusters', 'knn_density',
]
