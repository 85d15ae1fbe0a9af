import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from ltc_pyg.graph.components import relabel_by_first_appearance
from ltc_pyg.proposals.super_vertex import (
    IterativeSetting,
    Proposals,
    ProposalSetting,
    SuperVertexProposals,
    generate_proposals,
    iterative_proposals,
    knn_pairs,
    labels_to_proposals,
    super_vertex_features,
    super_vertex_labels,
)


def as_sets(nodes, offsets):
    return sorted(tuple(sorted(nodes[a:b].tolist()))
                  for a, b in zip(offsets[:-1], offsets[1:], strict=True))


def proposal_sets(proposals):
    return as_sets(proposals.nodes, proposals.offsets)


def read_knn(path):
    data = np.load(path)['data']
    return data[:, 0].astype(np.int64), 1.0 - data[:, 1]


def test_knn_pairs_keeps_first_occurrence():
    neighbor = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0]])
    similarity = np.array([[1.0, 0.9, 0.5], [1.0, 0.8, 0.7], [1.0, 0.6, 0.4]])
    pairs, scores = knn_pairs(neighbor, similarity, th=0.55)
    assert pairs.tolist() == [[0, 1], [1, 2]]
    # (0, 1) from row 0 (0.9, not 0.8); (1, 2) from row 1 (0.7, not 0.6).
    assert scores.tolist() == [0.9, 0.7]
    pairs, _ = knn_pairs(neighbor, similarity, th=0.55, k=2)
    assert pairs.tolist() == [[0, 1], [1, 2]]
    pairs, _ = knn_pairs(neighbor, similarity, th=0.95)
    assert pairs.shape == (0, 2)


def test_super_vertex_labels_split_by_threshold():
    # A chain 0-1-2-3 with weak middle link; max_size 2 cuts it there.
    neighbor = np.array([[0, 1], [1, 2], [2, 3], [3, 2], [4, 4]])
    similarity = np.array([[1, .9], [1, .6], [1, .9], [1, .9], [1, 1.]])
    labels = super_vertex_labels(neighbor, similarity, th=0.5, step=0.5,
                                 max_size=2)
    assert labels.tolist() == [0, 0, 1, 1, -1]
    labels = super_vertex_labels(neighbor, similarity, th=0.5, step=0.5,
                                 max_size=4)
    assert labels.tolist() == [0, 0, 0, 0, -1]


def test_labels_to_proposals_order_and_sizes():
    labels = np.array([2, 0, 2, -1, 0, 1, 2])
    proposals = labels_to_proposals(labels, min_size=2)
    # Ordered by smallest member, members sorted; {5} dropped.
    assert proposals.nodes.tolist() == [0, 2, 6, 1, 4]
    assert proposals.offsets.tolist() == [0, 3, 5]
    assert proposals.sizes.tolist() == [3, 2]
    assert proposals.batch.tolist() == [0, 0, 0, 1, 1]
    assert proposals.proposal(1).tolist() == [1, 4]
    assert labels_to_proposals(labels, 1, max_size=2).offsets.tolist() == [
        0, 2, 3]
    empty = labels_to_proposals(np.full(3, -1))
    assert len(empty) == 0 and empty.offsets.tolist() == [0]


def test_proposals_select_and_concat():
    proposals = Proposals(np.array([0, 1, 2, 3, 4]), np.array([0, 2, 3, 5]))
    chosen = proposals.select(np.array([True, False, True]))
    assert chosen.nodes.tolist() == [0, 1, 3, 4]
    assert chosen.offsets.tolist() == [0, 2, 4]
    both = Proposals.concat([chosen, proposals])
    assert both.offsets.tolist() == [0, 2, 4, 6, 7, 9]
    assert len(Proposals.concat([])) == 0


def test_super_vertex_features_mean():
    x = np.array([[1, 0], [0, 1], [3, 4]], dtype=np.float32)
    means = super_vertex_features(x, np.array([0, 0, 1]), normalize=False)
    assert np.allclose(means, [[0.5, 0.5], [3, 4]])
    unit = super_vertex_features(x, np.array([0, 0, 1]))
    assert np.allclose(unit, [[0.5**0.5, 0.5**0.5], [0.6, 0.8]])


def test_settings_checked():
    with pytest.raises(ValueError, match='min_size'):
        ProposalSetting(min_size=5, max_size=3)
    with pytest.raises(ValueError, match='step'):
        ProposalSetting(step=0)
    with pytest.raises(ValueError, match='sv_min_size'):
        IterativeSetting(sv_min_size=3, sv_max_size=2)


def test_generate_proposals_multi_scale_and_iterative():
    # Two tight pairs {0,1} and {2,3}, close to each other, and a loner 4.
    x = np.array([[1, 0, 0], [0.99, 0.14, 0], [0.9, 0.44, 0],
                  [0.88, 0.47, 0], [0, 0, 1]], dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sim = x @ x.T
    neighbor = np.argsort(-sim, axis=1, kind='stable')[:, :3]
    similarity = np.take_along_axis(sim, neighbor, axis=1)
    settings = (ProposalSetting(k=3, th=0.99, max_size=4, min_size=2,
                                iterations=(IterativeSetting(
                                    k=2, th=0.8, max_size=4, min_size=3,
                                    sv_max_size=2, sv_min_size=2), )),
                ProposalSetting(k=3, th=0.8, max_size=4, min_size=2,
                                keep=True))
    proposals, origin = generate_proposals(x, neighbor, similarity,
                                           settings)
    assert proposal_sets(proposals) == [(0, 1), (0, 1, 2, 3), (0, 1, 2, 3),
                                        (2, 3)]
    assert origin.tolist() == [0, 0, 1, 2]
    # Settings with keep=False only serve as super-vertices.
    settings = (ProposalSetting(k=3, th=0.99, max_size=4, min_size=2,
                                keep=False,
                                iterations=settings[0].iterations), )
    proposals, origin = generate_proposals(x, neighbor, similarity,
                                           settings)
    assert proposal_sets(proposals) == [(0, 1, 2, 3)]
    assert origin.tolist() == [1]
    with pytest.raises(ValueError, match='k=80 exceeds'):
        generate_proposals(x, neighbor, similarity, (ProposalSetting(), ))


def test_empty_and_tiny_graphs():
    settings = (ProposalSetting(k=1, th=0.5, iterations=(
        IterativeSetting(), )), )
    x = np.ones((1, 4), dtype=np.float32) / 2
    proposals, origin = generate_proposals(x, np.zeros((1, 1), np.int64),
                                           np.ones((1, 1)), settings)
    assert len(proposals) == 0 and origin.size == 0
    x = np.zeros((0, 4), dtype=np.float32)
    proposals, origin = generate_proposals(
        x, np.zeros((0, 1), np.int64), np.zeros((0, 1)), settings)
    assert len(proposals) == 0


def test_transform_does_not_modify_input():
    x = torch.eye(4)
    data = Data(x=x, knn_neighbor=torch.tensor([[0, 1], [1, 0], [2, 3],
                                                [3, 2]]),
                knn_similarity=torch.tensor([[1., .9], [1., .9], [1., .2],
                                             [1., .2]]))
    transform = SuperVertexProposals(
        (ProposalSetting(k=2, th=0.5, max_size=10, min_size=2), ))
    out = transform(data.clone())
    assert out.proposal_nodes.tolist() == [0, 1]
    assert out.proposal_ptr.tolist() == [0, 2]
    assert out.proposal_setting.tolist() == [0]
    assert 'proposal_nodes' not in data
    assert repr(transform) == (
        "SuperVertexProposals(settings=[ProposalSetting(k=2, th=0.5, "
        "step=0.05, max_size=10, min_size=2, keep=True, iterations=())], "
        "knn_method='flat')")


@pytest.mark.parametrize('name,th,max_size', [('basic0', 0.6, 300),
                                              ('basic1', 0.7, 100),
                                              ('basic2', 0.5, 100)])
def test_basic_proposals_match_reference(reference_fixtures, name, th,
                                         max_size):
    neighbor, similarity = read_knn(reference_fixtures /
                                    'graph/knns/faiss_k_80.npz')
    expected = np.load(reference_fixtures / f'algorithms/proposals_{name}.npz')
    labels = super_vertex_labels(neighbor, similarity, th, 0.05, max_size,
                                 k=80)
    assert proposal_sets(labels_to_proposals(labels)) == as_sets(
        expected['raw_components'], expected['raw_component_offsets'])
    proposals = labels_to_proposals(labels, 3, max_size)
    assert proposal_sets(proposals) == as_sets(expected['nodes'],
                                               expected['node_offsets'])
    # Ordered by smallest member id, as the reference lists them.
    starts = expected['node_offsets'][:-1]
    smallest = np.minimum.reduceat(expected['nodes'], starts)
    assert proposals.nodes[proposals.offsets[:-1]].tolist() == \
        smallest.tolist()


@pytest.mark.parametrize('name,setting', [
    ('iter0', IterativeSetting(2, 0.4, 0.05, 500, 3, 8, 2)),
    ('iter1', IterativeSetting(3, 0.4, 0.05, 500, 3, 5, 2)),
])
def test_iterative_proposals_match_reference(reference_fixtures, name,
                                             setting):
    basic0 = np.load(reference_fixtures / 'algorithms/proposals_basic0.npz')
    expected = np.load(reference_fixtures / f'algorithms/proposals_{name}.npz')
    # The reference's super-vertices: basic0's pred_labels.txt read back in
    # order of first appearance; ids 1998 and 1999 are in none (quirk 9).
    sv_of_node = np.full(2000, -1)
    sv_of_node[:1998] = relabel_by_first_appearance(basic0['pred_labels_txt'])
    sv_neighbor = expected['sv_knns'][:, 0].astype(np.int64)
    sv_similarity = 1.0 - expected['sv_knns'][:, 1]
    proposals = iterative_proposals(sv_of_node, sv_neighbor, sv_similarity,
                                    setting)
    assert proposal_sets(proposals) == as_sets(expected['nodes'],
                                               expected['node_offsets'])
