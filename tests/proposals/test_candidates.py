import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from ltc_pyg.data.io import read_knn
from ltc_pyg.graph.knn import l2_normalize
from ltc_pyg.graph.sparse import gcn_adjacency
from ltc_pyg.graph.transforms import knn_to_tensors, to_sparse_adjacency
from ltc_pyg.proposals.candidates import (
    CandidateSubgraphs,
    pick_per_subgraph,
    select_candidates,
)

NEIGHBOR = torch.tensor([[0, 1, 2, 3], [1, 0, 2, 4], [2, 3, 1, 0],
                         [3, 2, 4, 1], [4, 3, 1, 2]])
SIMILARITY = torch.tensor([[1., .9, .8, .7], [1., .9, .6, .5],
                           [1., .9, .6, .8], [1., .9, .7, .6],
                           [1., .7, .5, .5]])
CONFIDENCE = torch.tensor([.1, .2, .5, .6, .9])
LABELS = torch.tensor([0, 0, 0, 1, 1])


def _adjacency():
    dense = torch.eye(5)
    dense[2] = torch.tensor([0., 0., .5, .25, .25])
    dense[4] = torch.tensor([0., .4, .2, 0., .4])
    target, source = dense.nonzero().t()
    return to_sparse_adjacency(torch.stack([source, target]),
                               dense[target, source], 5)


def _builder(labels=LABELS):
    x = torch.arange(10.).view(5, 2)
    return CandidateSubgraphs(x, NEIGHBOR, SIMILARITY, CONFIDENCE,
                              _adjacency(), labels)


def test_select_candidates():
    # Candidates: 0 -> [1, 2, 3], 1 -> [2, 4], 2 -> [3], 3 -> [4], 4 -> [].
    selection = select_candidates(NEIGHBOR, CONFIDENCE, ignore_ratio=0.0)
    assert selection.direct_peak.tolist() == [-1, -1, 3, 4, -1]
    assert selection.centers.tolist() == [0, 1]
    assert selection.ignored.tolist() == []
    # The least confident node (0) is ignored: it links to its first one.
    selection = select_candidates(NEIGHBOR, CONFIDENCE, ignore_ratio=0.2)
    assert selection.direct_peak.tolist() == [1, -1, 3, 4, -1]
    assert selection.centers.tolist() == [1]
    assert selection.ignored.tolist() == [0]
    with pytest.raises(ValueError, match=r'in \[0, 1\] \(got 1.5\)'):
        select_candidates(NEIGHBOR, CONFIDENCE, 1.5)


def test_subgraph_by_hand():
    data = _builder()(torch.tensor([1]))
    assert data.n_id.tolist() == [2, 4]
    assert data.center.tolist() == [1]
    assert data.x.tolist() == [[2., 2.], [6., 6.]]  # x_j - x_1
    assert torch.allclose(data.similarity, torch.tensor([.6, .5]))
    # Block of rows/cols {2, 4}: [[.5, .25], [.2, .4]], re-row-normalised.
    assert data.edge_index.tolist() == [[0, 1, 0, 1], [0, 0, 1, 1]]
    assert torch.allclose(data.edge_weight,
                          torch.tensor([2 / 3, 1 / 3, 1 / 3, 2 / 3]))
    assert data.y.tolist() == [1, 0]
    assert 'y' not in _builder(None)(torch.tensor([1]))


def test_batch_equals_batch_from_data_list():
    builder = _builder()
    centers = torch.tensor([0, 1, 2])
    batch = builder(centers)
    singles = []
    for center in centers:
        one = builder(center.view(1))
        singles.append(Data(**{key: one[key] for key in (
            'x', 'edge_index', 'edge_weight', 'n_id', 'similarity', 'center',
            'y')}))
    expected = Batch.from_data_list(singles)
    for key in ('x', 'edge_index', 'edge_weight', 'n_id', 'similarity',
                'center', 'y', 'batch', 'ptr'):
        assert torch.equal(batch[key], expected[key]), key
    assert batch.num_graphs == 3


def test_centres_need_candidates():
    with pytest.raises(ValueError, match=r'1 centres have no candidate '
                       r'\(first: \[4\]\)'):
        _builder()(torch.tensor([1, 4]))
    with pytest.raises(ValueError, match='sparse CSR'):
        CandidateSubgraphs(torch.zeros(5, 2), NEIGHBOR, SIMILARITY,
                           CONFIDENCE, torch.eye(5))


def test_pick_per_subgraph_breaks_ties_randomly():
    score = torch.tensor([.1, .5, .3, .3, .2])
    batch = torch.tensor([0, 0, 1, 1, 1])
    picks = {tuple(pick_per_subgraph(score, batch, 2, torch.Generator(
        ).manual_seed(seed)).tolist()) for seed in range(20)}
    assert picks == {(1, 2), (1, 3)}
    generator = torch.Generator().manual_seed(0)
    first = pick_per_subgraph(score, batch, 2, generator)
    again = pick_per_subgraph(score, batch, 2,
                              torch.Generator().manual_seed(0))
    assert torch.equal(first, again)


def test_matches_reference_gcn_e_dataset(reference_fixtures):
    root = reference_fixtures
    io = np.load(root / 'models' / 'gcn_e_io.npz')
    x = torch.from_numpy(l2_normalize(np.load(
        root / 'models' / 'gcn_v_io.npz')['gcn_feat']))
    neighbor, similarity = knn_to_tensors(read_knn(
        root / 'models' / 'gcn_e_gcnfeat_knn_k_80.npz'))
    confidence = torch.from_numpy(np.load(
        root / 'algorithms' / 'confidences.npz')['s_nbr'])
    selection = select_candidates(neighbor, confidence, ignore_ratio=0.8)
    np.testing.assert_array_equal(selection.direct_peak,
                                  io['dataset_direct_peaks'])
    np.testing.assert_array_equal(selection.centers,
                                  io['dataset_subset_idxs'])
    np.testing.assert_array_equal(selection.ignored,
                                  io['dataset_ignore_set'])
    labels = torch.from_numpy(np.loadtxt(root / 'graph' / 'labels.meta',
                                         dtype=np.int64))
    builder = CandidateSubgraphs(x, neighbor, similarity, confidence,
                                 gcn_adjacency(x, neighbor, similarity, 0.0),
                                 labels)
    centers = torch.tensor([int(io[f's{t}_center']) for t in range(3)])
    batch = builder(centers)
    for t in range(3):
        part = slice(int(batch.ptr[t]), int(batch.ptr[t + 1]))
        np.testing.assert_array_equal(batch.n_id[part], io[f's{t}_nbrs'])
        np.testing.assert_allclose(batch.x[part], io[f's{t}_features'][0],
                                   atol=1e-6)
        np.testing.assert_allclose(1 - batch.similarity[part].numpy(),
                                   io[f's{t}_dists'], atol=1e-6)
        np.testing.assert_array_equal(batch.y[part], io[f's{t}_labels'][0])
        inside = batch.batch[batch.edge_index[1]] == t
        local = batch.edge_index[:, inside] - batch.ptr[t]
        size = part.stop - part.start
        dense = torch.zeros(size, size)
        dense[local[1], local[0]] = batch.edge_weight[inside]
        np.testing.assert_allclose(dense, io[f's{t}_adj'][0], atol=1e-6)
