r"""Reading, writing and checking data in the learn-to-cluster layout, and
the synthetic face-embedding generator."""
from ltc_pyg.data.io import (
    KNN,
    atomic_write,
    read_features,
    read_knn,
    read_knn_metadata,
    read_labels,
    write_features,
    write_knn,
    write_labels,
)
from ltc_pyg.data.synthetic import EmbeddingSet, make_splits, write_split
from ltc_pyg.data.validation import (
    check_features,
    check_k,
    check_knn,
    check_labels,
)

__all__ = [
    'KNN', 'atomic_write', 'read_features', 'write_features', 'read_labels',
    'write_labels', 'read_knn', 'write_knn', 'read_knn_metadata',
    'EmbeddingSet', 'make_splits', 'write_split', 'check_features',
    'check_labels', 'check_knn', 'check_k',
]
