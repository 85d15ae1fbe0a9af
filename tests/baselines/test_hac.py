import math

import numpy as np
import pytest
import torch
from scipy.cluster.hierarchy import fcluster, linkage

from ltc_pyg.baselines.hac import (
    dense_hac_memory_gb,
    fast_hac,
    similarity_to_distance,
)
from ltc_pyg.graph.components import relabel_by_first_appearance
from ltc_pyg.graph.knn import knn_search


def unit_circle(degrees):
    angle = np.deg2rad(degrees)
    return np.stack([np.cos(angle), np.sin(angle)], axis=1).astype(
        np.float32)


def knn_tensors(x, k):
    knn = knn_search(x, k)
    return torch.from_numpy(knn.neighbor), torch.from_numpy(knn.similarity)


def test_similarity_to_distance():
    assert similarity_to_distance(1.0) == 0.0
    assert similarity_to_distance(0.5) == 1.0
    assert similarity_to_distance(0.0) == pytest.approx(math.sqrt(2))
    assert similarity_to_distance(-1.0) == 2.0
    np.testing.assert_array_equal(
        similarity_to_distance(np.array([1.0 + 1e-7, 0.5, -1.0])),
        [0.0, 1.0, 2.0])


def test_dense_hac_memory_gb():
    assert dense_hac_memory_gb(1) == 0.0
    assert dense_hac_memory_gb(2) == 8 / 1024**3
    # 8 * 32769 * 32768 / 2 bytes = 32769 / 8192 GiB.
    assert dense_hac_memory_gb(2**15 + 1) == (2**15 + 1) / 2**13


@pytest.mark.parametrize('distance_threshold', [0.5, 0.7, 0.8, 0.9, 1.5])
def test_sparse_single_linkage_equals_dense_scipy(distance_threshold):
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    x = torch.nn.functional.normalize(x).numpy()
    neighbor, similarity = knn_tensors(x, 8)  # k covers every pair
    expected = fcluster(linkage(x.astype(np.float64), 'single'),
                        distance_threshold, criterion='distance')
    sparse = fast_hac(x, neighbor, similarity, distance_threshold)
    dense = fast_hac(x, neighbor, similarity, distance_threshold,
                     dense=True)
    assert sparse.dtype == dense.dtype == np.int64
    expected = relabel_by_first_appearance(expected).tolist()
    assert relabel_by_first_appearance(sparse).tolist() == expected
    assert relabel_by_first_appearance(dense).tolist() == expected


def test_single_linkage_by_hand():
    # Two arcs 10 degrees apart inside, 70 degrees between them; 10
    # degrees is a distance of 2 sin(5 deg) = 0.174.
    x = unit_circle([0, 10, 20, 90, 100, 110])
    neighbor, similarity = knn_tensors(x, 4)
    assert fast_hac(x, neighbor, similarity, 0.2).tolist() == [
        0, 0, 0, 1, 1, 1]
    assert fast_hac(x, neighbor, similarity, 0.1).tolist() == [
        0, 1, 2, 3, 4, 5]


def test_average_linkage_two_arcs():
    x = unit_circle([0, 10, 20, 90, 100, 110])
    neighbor, similarity = knn_tensors(x, 4)
    # Average distance inside an arc <= 0.35, across >= 2 sin(35 deg).
    labels = fast_hac(x, neighbor, similarity, 0.5, linkage='average')
    assert labels.dtype == np.int64
    assert relabel_by_first_appearance(labels).tolist() == [
        0, 0, 0, 1, 1, 1]
    labels = fast_hac(x, neighbor, similarity, 0.5, linkage='average',
                      dense=True)
    assert relabel_by_first_appearance(labels).tolist() == [
        0, 0, 0, 1, 1, 1]


def test_dense_refused_above_the_memory_limit():
    x = np.empty((100_000, 1), np.float32)  # only its size is read
    with pytest.raises(ValueError, match=r'Dense HAC of 100000 samples '
                       r'needs 37.3 GiB for its distance matrix \(limit 4.0 '
                       r'GiB\); use the sparse kNN version'):
        fast_hac(x, None, None, 0.5, dense=True)


@pytest.mark.parametrize('kwargs, match', [
    ({'linkage': 'complete'}, r"linkage must be 'single' or 'average' "
     r"\(got 'complete'\)"),
    ({'distance_threshold': -1.0}, r'distance_threshold must be '
     r'non-negative \(got -1.0\)'),
])
def test_rejects_bad_arguments(kwargs, match):
    x = unit_circle([0, 10])
    neighbor, similarity = knn_tensors(x, 2)
    kwargs = {'distance_threshold': 0.5, **kwargs}
    with pytest.raises(ValueError, match=match):
        fast_hac(x, neighbor, similarity, **kwargs)
