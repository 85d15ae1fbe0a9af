import numpy as np
import pytest
import torch

from ltc_pyg.baselines.infomap import infomap_clusters, knn_density

# Two triangles 0-1-2 and 3-4-5 (0.75) and one weak edge 2-3 (0.25).
NEIGHBOR = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 0, 3], [3, 4, 2],
                         [4, 3, 5], [5, 4, 3]])
SIMILARITY = torch.tensor([[1., .75, .75], [1., .75, .75], [1., .75, .25],
                           [1., .75, .25], [1., .75, .75], [1., .75, .75]])


def test_knn_density_leaves_out_the_node_itself():
    assert knn_density(SIMILARITY).tolist() == [.75, .75, .5, .5, .75, .75]
    with pytest.raises(ValueError, match=r'at least one neighbour per row '
                       r'\(got k=1\)'):
        knn_density(torch.ones(3, 1))


@pytest.mark.parametrize('kwargs', [{}, {'threshold': 0.5},
                                    {'temperature': 0.1},
                                    {'num_trials': 3, 'seed': 7}])
def test_two_cliques_joined_by_a_weak_edge(kwargs):
    labels = infomap_clusters(NEIGHBOR, SIMILARITY, **kwargs)
    assert labels.dtype == np.int64
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]


def test_threshold_removes_edges():
    # Pairs 0-1 and 2-3 at 0.75, every cross link at 0.5: one module
    # until the threshold drops the cross links.
    neighbor = torch.tensor([[0, 1, 2, 3], [1, 0, 2, 3], [2, 3, 0, 1],
                             [3, 2, 0, 1]])
    similarity = torch.tensor([[1., .75, .5, .5]] * 4)
    assert infomap_clusters(neighbor, similarity).tolist() == [0, 0, 0, 0]
    assert infomap_clusters(neighbor, similarity,
                            threshold=0.6).tolist() == [0, 0, 1, 1]
    assert infomap_clusters(neighbor, similarity,
                            threshold=0.9).tolist() == [0, 1, 2, 3]


def test_prune_fraction_makes_low_density_nodes_singletons():
    # int(0.34 * 6) = 2 nodes pruned: 2 and 3 (density 0.5), numbered
    # after the clusters.
    assert infomap_clusters(NEIGHBOR, SIMILARITY,
                            prune_fraction=0.34).tolist() == [
        0, 0, 2, 3, 1, 1]
    assert infomap_clusters(NEIGHBOR, SIMILARITY,
                            prune_fraction=0.1).tolist() == [
        0, 0, 0, 1, 1, 1]


def test_negative_similarities_are_no_links():
    # Infomap takes no negative weights; with a temperature they become
    # small probabilities instead.
    similarity = SIMILARITY.clone()
    similarity[2, 2] = similarity[3, 2] = -.25
    assert infomap_clusters(NEIGHBOR, similarity).tolist() == [
        0, 0, 0, 1, 1, 1]
    assert infomap_clusters(NEIGHBOR, similarity,
                            temperature=0.1).tolist() == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize('kwargs, match', [
    ({'temperature': 0.0}, r'temperature must be positive \(got 0.0\)'),
    ({'prune_fraction': 1.0}, r'prune_fraction must be in \[0, 1\) \(got '
     r'1.0\)'),
    ({'prune_fraction': -0.1}, r'prune_fraction must be in \[0, 1\) \(got '
     r'-0.1\)'),
])
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        infomap_clusters(NEIGHBOR, SIMILARITY, **kwargs)
