import numpy as np
import pytest
import torch

from ltc_pyg.graph.components import (
    connected_components,
    dynamic_threshold_components,
    maximum_spanning_forest,
    pool_pair_scores,
)
from ltc_pyg.graph.knn import knn_search
from ltc_pyg.graph.transforms import knn_to_edges


def test_pool_pair_scores_merges_both_directions():
    pairs = np.array([[1, 0], [0, 1], [2, 1], [0, 1]])
    scores = np.array([0.2, 0.4, 0.9, 0.9])
    unique, avg = pool_pair_scores(pairs, scores, 3, 'avg')
    assert unique.tolist() == [[0, 1], [1, 2]]
    assert np.allclose(avg, [0.5, 0.9])
    assert np.allclose(pool_pair_scores(pairs, scores, 3, 'max')[1],
                       [0.9, 0.9])
    assert np.allclose(pool_pair_scores(pairs, scores, 3, 'last')[1],
                       [0.9, 0.9])
    assert np.allclose(pool_pair_scores(pairs[:3], scores[:3], 3, None)[1],
                       [0.4, 0.9])


def test_small_components_are_final_in_round_zero():
    # Two triangles joined by a weak link; node 6 is in no link.
    pairs = np.array([[0, 1], [1, 2], [0, 2], [3, 4], [4, 5], [3, 5], [2, 3]])
    scores = np.array([.9, .9, .9, .8, .8, .8, .1])
    labels = dynamic_threshold_components(pairs, scores, 7, max_size=6,
                                          step=0.5)
    assert labels.tolist() == [0, 0, 0, 0, 0, 0, -1]


def test_large_component_is_cut_at_rising_threshold():
    pairs = np.array([[0, 1], [1, 2], [0, 2], [3, 4], [4, 5], [3, 5], [2, 3]])
    scores = np.array([.9, .9, .9, .8, .8, .8, .1])
    # t0 = 0.1, t1 = 0.1 + 0.9 * 0.5 = 0.55: the weak link goes.
    labels = dynamic_threshold_components(pairs, scores, 6, max_size=3,
                                          step=0.5)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    # A cap of 2: t3 = 0.8875 splits 3-4-5, t4 = 0.944 splits 0-1-2.
    labels = dynamic_threshold_components(pairs, scores, 6, max_size=2,
                                          step=0.5)
    assert labels.tolist() == [0, 1, 2, 3, 4, 5]


def test_leftover_after_max_rounds_is_one_cluster():
    pairs = np.array([[0, 1], [1, 2], [3, 4]])
    scores = np.array([1.0, 1.0, 1.0])
    labels = dynamic_threshold_components(pairs, scores, 5, max_size=2,
                                          step=0.5, max_rounds=3)
    assert labels.tolist() == [0, 0, 0, 1, 1]


@pytest.mark.parametrize('kwargs, match', [
    (dict(max_size=0, step=0.5), 'max_size'),
    (dict(max_size=2, step=0.0), 'step'),
])
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dynamic_threshold_components(np.array([[0, 1]]), np.array([1.0]), 2,
                                     **kwargs)


def test_rejects_out_of_range_ids():
    with pytest.raises(ValueError, match=r'outside \[0, 1\]'):
        dynamic_threshold_components(np.array([[0, 2]]), np.array([1.0]), 2,
                                     max_size=2, step=0.5)


@pytest.mark.parametrize('run', [
    'maxsz300_step0.6_avg', 'maxsz50_step0.6_avg', 'maxsz300_step0.6_max',
    'maxsz300_step0.6_none', 'maxsz100_step0.1_avg'
])
def test_matches_reference_propagation(reference_fixtures, run):
    fixture = np.load(reference_fixtures / 'algorithms' /
                      'graph_propagation.npz')
    max_size, step, pool = run.split('_')
    labels = dynamic_threshold_components(
        fixture['edges'], fixture['scores'], 2000, int(max_size[5:]),
        float(step[4:]), None if pool == 'none' else pool)
    # Both sides number clusters by first appearance: equal arrays.
    assert np.array_equal(labels, fixture[f'labels_{run}'])


def test_spanning_forest_has_the_components_of_every_threshold():
    # The forest of a hand-made graph: the triangle 0-1-2 keeps its two
    # strongest sides, the pair 3-4 is listed in both rows (with two
    # roundings of one similarity), 5 links nowhere but to itself.
    neighbor = np.array([[0, 1, 2], [1, 2, 0], [2, 1, 0], [3, 4, 2],
                         [4, 3, 0], [5, 5, 5]])
    similarity = np.array([[1, .9, .5], [1, .8, .9], [1, .8, .5],
                           [1, .7, .2], [1, .69999, .1], [1, 1, 1]],
                          dtype=np.float32)
    edge_index, weight = maximum_spanning_forest(neighbor, similarity)
    edges = {tuple(sorted(pair)): round(float(w), 5)
             for pair, w in zip(edge_index.T.tolist(), weight,
                                    strict=True)}
    assert edges == {(0, 1): 0.9, (1, 2): 0.8, (3, 4): 0.7, (2, 3): 0.2}
    # On a real kNN graph: the same components as all kNN edges.
    x = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    knn_neighbor, knn_similarity = knn_search(x, 6)
    edge_index, weight = maximum_spanning_forest(knn_neighbor,
                                                 knn_similarity)
    assert edge_index.shape[1] < 300
    all_edges, all_weight = knn_to_edges(torch.as_tensor(knn_neighbor),
                                         torch.as_tensor(knn_similarity))
    for threshold in np.quantile(knn_similarity[:, 1:], [0.1, 0.5, 0.9]):
        expected = connected_components(
            all_edges[:, all_weight >= threshold], 300)
        got = connected_components(edge_index[:, weight >= threshold], 300)
        assert np.array_equal(got, expected)
