import numpy as np
import pytest
import torch

from ltc_pyg.cluster.merge import merge_linked_clusters, threshold_links
from ltc_pyg.graph.components import (
    connected_components,
    relabel_by_first_appearance,
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


def test_merge_linked_clusters_by_link_mass_per_node():
    # Clusters A = {0, 1, 2, 3}, B = {4, 5}, C = {6}. A-B links weigh
    # 0.9 + 0.8 + 0.7 = 2.4 over min(4, 2) = 2 nodes: mass 1.2 (the two
    # directions of 1 -> 4 and 4 -> 1 add up). B-C: one link of 0.6 over
    # min(2, 1) = 1 node: mass 0.6. Links inside a cluster do not count.
    labels = np.array([0, 0, 0, 0, 1, 1, 2])
    edge_index = np.array([[0, 1, 4, 5, 6, 0],
                           [4, 4, 1, 6, 5, 1]])
    weight = np.array([0.9, 0.8, 0.7, 0.6, 0.0, 5.0])
    assert merge_linked_clusters(labels, edge_index, weight, 1.2).tolist() \
        == [0, 0, 0, 0, 0, 0, 1]
    assert merge_linked_clusters(labels, edge_index, weight, 0.6).tolist() \
        == [0] * 7
    assert merge_linked_clusters(labels, edge_index, weight, 1.3).tolist() \
        == labels.tolist()


def test_merge_linked_clusters_rejects_bad_input():
    edge_index = np.array([[0], [1]])
    with pytest.raises(ValueError, match='every node labelled'):
        merge_linked_clusters(np.array([0, -1]), edge_index, np.ones(1), 1.0)
    with pytest.raises(ValueError, match=r'expected \(1,\)'):
        merge_linked_clusters(np.array([0, 1]), edge_index, np.ones(2), 1.0)
    with pytest.raises(ValueError, match='min_mass must be positive'):
        merge_linked_clusters(np.array([0, 1]), edge_index, np.ones(1), 0.0)
