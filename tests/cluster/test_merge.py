import numpy as np
import pytest
import torch

from ltc_pyg.cluster.merge import (
    connected_components,
    relabel_by_first_appearance,
    threshold_links,
)


def test_connected_components_two_triangles_and_a_singleton():
    edge_index = torch.tensor([[4, 0, 1, 5, 3], [0, 1, 4, 3, 6]])
    labels = connected_components(edge_index, 7)
    assert labels.tolist() == [0, 0, 1, 2, 0, 2, 2]


def test_connected_components_rejects_bad_ids():
    with pytest.raises(ValueError, match=r'outside \[0, 2\]'):
        connected_components(np.array([[0], [3]]), 3)
    with pytest.raises(ValueError, match=r'\[2, num_edges\]'):
        connected_components(np.zeros((3, 2), int), 3)


def test_relabel_by_first_appearance_with_unassigned():
    labels = np.array([7, 7, -1, 3, 7, -1, 3, 9])
    assert relabel_by_first_appearance(labels).tolist() == [
        0, 0, 3, 1, 0, 4, 1, 2]


def test_threshold_links_cuts_the_weak_link():
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    weight = torch.tensor([.9, .2, .8, .7])
    assert threshold_links(edge_index, weight, 5, 0.5).tolist() == [
        0, 0, 1, 1, 1]
    assert threshold_links(edge_index, weight, 5, 0.1).tolist() == [0] * 5
