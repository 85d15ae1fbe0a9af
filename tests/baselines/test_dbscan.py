import numpy as np
import pytest
import torch

from ltc_pyg.baselines.dbscan import knn_dbscan

# A path 0-1-2 (0.75 links) with a 0.25 shortcut 0-2, and node 3 that
# points at 0 and 1 with 0.25. Distances are 1 - similarity: 0.25, 0.75.
NEIGHBOR = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 1, 0], [3, 0, 1]])
SIMILARITY = torch.tensor([[1., .75, .25], [1., .75, .75], [1., .75, .25],
                           [1., .25, .25]])


def test_min_samples_one_gives_the_eps_components():
    labels = knn_dbscan(NEIGHBOR, SIMILARITY, 0.25)
    assert labels.dtype == np.int64
    assert labels.tolist() == [0, 0, 0, 1]
    assert knn_dbscan(NEIGHBOR, SIMILARITY, 0.2).tolist() == [0, 1, 2, 3]
    assert knn_dbscan(NEIGHBOR, SIMILARITY, 0.75).tolist() == [0, 0, 0, 0]


def test_noise_with_min_samples_above_one():
    # eps 0.25: neighbourhoods {0, 1}, {0, 1, 2}, {1, 2}, {3}.
    assert knn_dbscan(NEIGHBOR, SIMILARITY, 0.25,
                      min_samples=2).tolist() == [0, 0, 0, -1]
    # Only 1 is core; 0 and 2 are its border samples.
    assert knn_dbscan(NEIGHBOR, SIMILARITY, 0.25,
                      min_samples=3).tolist() == [0, 0, 0, -1]
    assert knn_dbscan(NEIGHBOR, SIMILARITY, 0.25,
                      min_samples=4).tolist() == [-1, -1, -1, -1]


def test_min_similarity_drops_entries():
    # 3's only links (0.25) are gone: 3 is noise even at eps 0.75.
    assert knn_dbscan(NEIGHBOR, SIMILARITY, 0.75, min_samples=3,
                      min_similarity=0.5).tolist() == [0, 0, 0, -1]


def test_eps_zero_links_duplicates_only():
    neighbor = torch.tensor([[0, 1], [1, 0], [2, 0]])
    similarity = torch.tensor([[1., 1.], [1., 1.], [1., 0.]])
    assert knn_dbscan(neighbor, similarity, 0.0).tolist() == [0, 0, 1]
    # The zero similarity is a stored distance of 1.
    assert knn_dbscan(neighbor, similarity, 1.0).tolist() == [0, 0, 0]


def test_one_sided_knn_entries_link_in_any_node_order():
    # Only 2's row holds 0; the neighbourhood relation is symmetric.
    neighbor = torch.tensor([[0, 1], [1, 0], [2, 0]])
    similarity = torch.tensor([[1., .9], [1., .9], [1., .8]])
    assert knn_dbscan(neighbor, similarity, 0.25).tolist() == [0, 0, 0]
    permuted = torch.tensor([[0, 2], [1, 2], [2, 1]])  # 0 and 2 swapped
    assert knn_dbscan(permuted, similarity[[2, 1, 0]], 0.25).tolist() == [
        0, 0, 0]


@pytest.mark.parametrize('kwargs, match', [
    ({'eps': -0.1}, r'eps must be a non-negative distance \(got -0.1\)'),
    ({'eps': 0.1, 'min_samples': 0}, r'min_samples must be at least 1 '
     r'\(got 0\)'),
])
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        knn_dbscan(NEIGHBOR, SIMILARITY, **kwargs)
