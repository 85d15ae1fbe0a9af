import numpy as np
import pytest
import torch

from ltc_pyg.baselines.chinese_whispers import chinese_whispers
from ltc_pyg.graph.knn import knn_search

# Two triangles 0-1-2 and 3-4-5 (0.75) and one weak edge 2-3 (0.25).
NEIGHBOR = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 0, 3], [3, 4, 2],
                         [4, 3, 5], [5, 4, 3]])
SIMILARITY = torch.tensor([[1., .75, .75], [1., .75, .75], [1., .75, .25],
                           [1., .75, .25], [1., .75, .75], [1., .75, .75]])


@pytest.mark.parametrize('seed', range(5))
def test_two_cliques_give_two_clusters(seed):
    labels = chinese_whispers(NEIGHBOR, SIMILARITY, 0.5, seed=seed)
    assert labels.dtype == np.int64
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]


def test_threshold_above_every_edge_leaves_singletons():
    assert chinese_whispers(NEIGHBOR, SIMILARITY, 0.8).tolist() == [
        0, 1, 2, 3, 4, 5]


def test_no_iterations_leaves_singletons():
    assert chinese_whispers(NEIGHBOR, SIMILARITY, 0.5,
                            num_iterations=0).tolist() == [0, 1, 2, 3, 4, 5]


def test_deterministic_per_seed():
    x = torch.randn(60, 4, generator=torch.Generator().manual_seed(0))
    knn = knn_search(x.numpy(), 6)
    neighbor = torch.from_numpy(knn.neighbor)
    similarity = torch.from_numpy(knn.similarity)
    runs = [chinese_whispers(neighbor, similarity, 0.0, num_iterations=3,
                             seed=seed) for seed in (0, 0, 1)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_input_not_modified():
    neighbor, similarity = NEIGHBOR.clone(), SIMILARITY.clone()
    chinese_whispers(neighbor, similarity, 0.5)
    assert torch.equal(neighbor, NEIGHBOR)
    assert torch.equal(similarity, SIMILARITY)


@pytest.mark.parametrize('kwargs, match', [
    ({'num_iterations': -1}, r'num_iterations must be non-negative \(got '
     r'-1\)'),
    ({'update_fraction': 0.0}, r'update_fraction must be in \(0, 1\] \(got '
     r'0.0\)'),
    ({'update_fraction': 1.5}, r'update_fraction must be in \(0, 1\] \(got '
     r'1.5\)'),
])
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        chinese_whispers(NEIGHBOR, SIMILARITY, 0.5, **kwargs)
