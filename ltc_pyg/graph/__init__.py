r"""The kNN affinity graph: faiss search, PyG transforms, the dataset."""
from ltc_pyg.graph.components import (
    connected_components,
    dynamic_threshold_components,
    maximum_spanning_forest,
    pool_pair_scores,
    relabel_by_first_appearance,
)
from ltc_pyg.graph.dataset import FaceClusteringDataset, affinity_data
from ltc_pyg.graph.edge_probability import (
    EDGE_FEATURES,
    EarlyStop,
    NeighborEdgeProbability,
    SharedNeighbors,
    default_temperature,
    early_stop,
    kept_links,
    knn_edge_features,
    mean_knn_distance,
    neighbor_edge_probability,
    neighbor_probability,
    shared_neighbors,
)
from ltc_pyg.graph.knn import (
    KNN_METHODS,
    cached_knn_search,
    fingerprint,
    knn_recall,
    knn_search,
    l2_normalize,
    torch_exact_search,
)
from ltc_pyg.graph.sparse import (
    adjacency_row_block,
    adjacency_rows,
    csr_arrays,
    csr_entry_positions,
    gcn_adjacency,
)
from ltc_pyg.graph.transforms import (
    AffinityData,
    KNNAffinityGraph,
    RowNormalize,
    ToSparseAdjacency,
    knn_to_edges,
    knn_to_tensors,
    row_normalize,
    symmetrize_max,
    to_sparse_adjacency,
)

__all__ = [
    'knn_search', 'torch_exact_search', 'cached_knn_search', 'knn_recall',
    'fingerprint',
    'l2_normalize', 'KNN_METHODS', 'KNNAffinityGraph', 'RowNormalize',
    'knn_to_edges', 'knn_to_tensors',
    'row_normalize', 'to_sparse_adjacency', 'FaceClusteringDataset',
    'affinity_data', 'ToSparseAdjacency', 'gcn_adjacency', 'adjacency_rows',
    'adjacency_row_block',
    'csr_arrays', 'csr_entry_positions', 'symmetrize_max', 'AffinityData',
    'EDGE_FEATURES', 'EarlyStop', 'NeighborEdgeProbability',
    'SharedNeighbors', 'default_temperature', 'early_stop', 'kept_links',
    'knn_edge_features', 'mean_knn_distance', 'neighbor_edge_probability',
    'neighbor_probability', 'shared_neighbors', 'connected_components',
    'relabel_by_first_appearance', 'pool_pair_scores',
    'dynamic_threshold_components', 'maximum_spanning_forest',
]
