import numpy as np
import pytest

from ltc_pyg.graph.components import (
    dynamic_threshold_components,
    pool_pair_scores,
)


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
