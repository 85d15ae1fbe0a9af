import numpy as np
import pytest
import torch

from ltc_pyg.baselines.sklearn_wrappers import kmeans, mean_shift, spectral
from ltc_pyg.graph.components import relabel_by_first_appearance
from ltc_pyg.graph.knn import knn_search

# Two arcs of unit vectors at 0, 10, 20 and 90, 100, 110 degrees: inside an
# arc the cosine is >= cos(20 deg) = 0.94, across it is <= cos(70 deg).
ANGLE = np.deg2rad([0, 10, 20, 90, 100, 110])
X = np.stack([np.cos(ANGLE), np.sin(ANGLE)], axis=1).astype(np.float32)
KNN = knn_search(X, 4)  # the fourth column links the arcs
NEIGHBOR = torch.from_numpy(KNN.neighbor)
SIMILARITY = torch.from_numpy(KNN.similarity)
TWO_ARCS = [0, 0, 0, 1, 1, 1]


def partition(labels):
    assert labels.dtype == np.int64 and labels.shape == (6,)
    return relabel_by_first_appearance(labels).tolist()


@pytest.mark.parametrize('batch_size', [None, 2])
def test_kmeans_recovers_two_arcs(batch_size):
    labels = kmeans(X, 2, batch_size=batch_size, max_iter=10)
    assert partition(labels) == TWO_ARCS


def test_kmeans_is_seeded():
    x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
    x = x.numpy()
    np.testing.assert_array_equal(kmeans(x, 4, seed=3), kmeans(x, 4, seed=3))


@pytest.mark.parametrize('assign_labels', ['kmeans', 'cluster_qr',
                                           'discretize'])
def test_spectral_recovers_two_arcs(assign_labels):
    labels = spectral(NEIGHBOR, SIMILARITY, 2, assign_labels=assign_labels)
    assert partition(labels) == TWO_ARCS


def test_spectral_uses_fewer_eigenvectors_with_kmeans():
    labels = spectral(NEIGHBOR, SIMILARITY, 3, n_components=2)
    assert labels.max() == 2


@pytest.mark.parametrize('num_seeds', [None, 6, 1000])
def test_mean_shift_recovers_two_arcs(num_seeds):
    # Inside an arc the distance is <= 0.35, across it >= 1.15.
    assert partition(mean_shift(X, 0.5, num_seeds=num_seeds)) == TWO_ARCS
    assert partition(mean_shift(X, 2.0, num_seeds=num_seeds)) == [0] * 6


def test_mean_shift_finds_at_most_num_seeds_modes():
    assert partition(mean_shift(X, 0.5, num_seeds=1)) == [0] * 6


@pytest.mark.parametrize('call, match', [
    (lambda: kmeans(X, 0), r'n_clusters must be in \[1, 6\] for 6 samples '
     r'\(got 0\)'),
    (lambda: kmeans(X, 7), r'n_clusters must be in \[1, 6\] for 6 samples '
     r'\(got 7\)'),
    (lambda: kmeans(X, 2, batch_size=0), r'batch_size must be at least 1 '
     r'\(got 0\)'),
    (lambda: spectral(NEIGHBOR, SIMILARITY, 7), r'n_clusters must be in '
     r'\[1, 6\]'),
    (lambda: spectral(NEIGHBOR, SIMILARITY, 2, min_similarity=-0.1),
     r'min_similarity must be >= 0 \(got -0.1\)'),
    (lambda: spectral(NEIGHBOR, SIMILARITY, 3, n_components=2,
                      assign_labels='discretize'),
     r"assign_labels='discretize' needs one eigenvector per cluster \(3\) "
     r'but n_components is 2'),
    (lambda: mean_shift(X, 0.0), r'bandwidth must be positive \(got 0.0\)'),
])
def test_rejects_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
