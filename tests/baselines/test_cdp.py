import numpy as np
import torch

from ltc_pyg.baselines.cdp import cdp_link

# Two triangles 0-1-2 and 3-4-5 (0.75) and one weak edge 2-3 (0.25).
NEIGHBOR = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 0, 3], [3, 4, 2],
                         [4, 3, 5], [5, 4, 3]])
SIMILARITY = torch.tensor([[1., .75, .75], [1., .75, .75], [1., .75, .25],
                           [1., .75, .25], [1., .75, .75], [1., .75, .75]])


def test_components_above_the_threshold():
    labels = cdp_link(NEIGHBOR, SIMILARITY, 0.5)
    assert labels.dtype == np.int64
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert cdp_link(NEIGHBOR, SIMILARITY, 0.25).tolist() == [0] * 6
    assert cdp_link(NEIGHBOR, SIMILARITY, 0.8).tolist() == [
        0, 1, 2, 3, 4, 5]


def test_max_size_cuts_the_weak_edge_first():
    assert cdp_link(NEIGHBOR, SIMILARITY, 0.25, max_size=6).tolist() == [
        0] * 6
    assert cdp_link(NEIGHBOR, SIMILARITY, 0.25, max_size=3).tolist() == [
        0, 0, 0, 1, 1, 1]
    # A triangle's links are all 0.75: capped at 2 it falls apart.
    assert cdp_link(NEIGHBOR, SIMILARITY, 0.25, max_size=2).tolist() == [
        0, 1, 2, 3, 4, 5]


def test_max_size_caps_a_chain():
    # 0 -0.9- 1 -0.6- 2 -0.8- 3 -0.4- 4, and 5 without links.
    neighbor = torch.tensor([[0, 1], [1, 2], [2, 3], [3, 4], [4, 3],
                             [5, 4]])
    similarity = torch.tensor([[1., .9], [1., .6], [1., .8], [1., .4],
                               [1., .4], [1., .1]])
    assert cdp_link(neighbor, similarity, 0.3).tolist() == [
        0, 0, 0, 0, 0, 1]
    for max_size, expected in [(4, [0, 0, 0, 0, 1, 2]),
                               (2, [0, 0, 1, 1, 2, 3])]:
        labels = cdp_link(neighbor, similarity, 0.3, max_size=max_size)
        assert labels.tolist() == expected
        assert np.bincount(labels).max() <= max_size


def test_pool_combines_the_two_directions():
    # 0 sees 1 at 0.9 but 1 sees 0 at 0.5; 1-2 at 0.7 both ways.
    neighbor = torch.tensor([[0, 1, 2], [1, 2, 0], [2, 1, 0]])
    similarity = torch.tensor([[1., .9, 0.], [1., .7, .5], [1., .7, 0.]])
    # max: 0-1 at 0.9 outlasts 1-2 at 0.7; avg: 0-1 at 0.7 ties it.
    assert cdp_link(neighbor, similarity, 0.1, max_size=2,
                    pool='max').tolist() == [0, 0, 1]
    assert cdp_link(neighbor, similarity, 0.1, max_size=2,
                    pool='avg').tolist() == [0, 1, 2]
