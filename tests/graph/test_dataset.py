import numpy as np
import pytest
import torch

from ltc_pyg.data.io import (
    KNN,
    read_knn_metadata,
    write_features,
    write_knn,
    write_labels,
)
from ltc_pyg.graph.dataset import FaceClusteringDataset, affinity_data
from ltc_pyg.graph.transforms import KNNAffinityGraph

X = np.array([[1, 0], [.9, .1], [0, 1], [.1, .9]], np.float32)


def test_reads_layout_and_caches_knn(tmp_path):
    write_features(tmp_path / 'features' / 'toy.bin', X)
    write_labels(tmp_path / 'labels' / 'toy.meta', np.array([0, 0, 1, 1]))
    dataset = FaceClusteringDataset(tmp_path, 'toy', dim=2, k=2)
    assert len(dataset) == 1
    data = dataset[0]
    assert data.y.tolist() == [0, 0, 1, 1]
    assert data.knn_neighbor.tolist() == [[0, 1], [1, 0], [2, 3], [3, 2]]
    assert torch.allclose(data.x.norm(dim=1), torch.ones(4))
    knn_file = tmp_path / 'knns' / 'toy' / 'faiss_k_2.npz'
    assert read_knn_metadata(knn_file)['method'] == 'flat'
    assert str(dataset) == "FaceClusteringDataset('toy', k=2, knn_method=flat)"


def test_original_knn_file_is_used_as_is(tmp_path):
    write_features(tmp_path / 'features' / 'toy.bin', X)
    # An original-layout file without fingerprint: trusted, with a warning.
    original = KNN(np.array([[0, 2], [1, 3], [2, 0], [3, 1]]),
                   np.tile(np.array([1, .5], np.float32), (4, 1)))
    write_knn(tmp_path / 'knns' / 'toy' / 'faiss_k_2.npz', original)
    dataset = FaceClusteringDataset(tmp_path, 'toy', dim=2, k=2,
                                    transform=KNNAffinityGraph(k=2))
    with pytest.warns(UserWarning, match='no fingerprint'):
        data = dataset[0]
    assert 'y' not in data
    assert data.edge_index.tolist() == [[2, 3, 0, 1], [0, 1, 2, 3]]


def test_missing_features_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='features/toy.bin'):
        FaceClusteringDataset(tmp_path, 'toy', dim=2)[0]


def test_affinity_data_checks_label_count():
    knn = KNN(np.zeros((4, 1), np.int64), np.ones((4, 1), np.float32))
    with pytest.raises(ValueError, match='Got 3 labels for 4 nodes'):
        affinity_data(X, knn, np.array([0, 1, 2]))
