import numpy as np
import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.utils import to_dense_adj

from ltc_pyg.proposals.dataset import ProposalGraphs
from ltc_pyg.proposals.super_vertex import Proposals

# Four nodes; row i of the kNN lists i first.
NEIGHBOR = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0], [3, 2, 1]])
SIMILARITY = np.array([[1, .8, .4], [1, .6, .5], [1, .9, .2],
                       [1, .7, .3]], dtype=np.float32)
X = torch.arange(8, dtype=torch.float).view(4, 2)
LABELS = np.array([0, 0, 1, 1])


def dense(data):
    # A[i, j] = weight of j -> i.
    return to_dense_adj(data.edge_index, edge_attr=data.edge_weight,
                        max_num_nodes=data.num_nodes)[0].T


def test_single_proposal_graph():
    proposals = Proposals(np.array([2, 0, 1]), np.array([0, 3]))
    data = ProposalGraphs(X, NEIGHBOR, SIMILARITY, proposals, LABELS)[0]
    assert data.n_id.tolist() == [2, 0, 1]
    assert torch.equal(data.x, X[[2, 0, 1]])
    # Local order (2, 0, 1): kNN pairs 0-1, 0-2 (no threshold), self-loops.
    expected = torch.tensor([[1, 1, 0], [1, 1, 1], [0, 1, 1]]).float()
    assert torch.allclose(dense(data), expected / expected.sum(1,
                                                               keepdim=True))
    # Majority label 0: |P & G| = 2, |G| = 2, |P| = 3.
    assert data.iou.tolist() == pytest.approx([2 / 3])
    assert data.iop.tolist() == pytest.approx([2 / 3])
    assert data.node_label.tolist() == [0, 1, 1]


def test_weighted_takes_larger_direction():
    proposals = Proposals(np.array([0, 1]), np.array([0, 2]))
    data = ProposalGraphs(X, NEIGHBOR, SIMILARITY, proposals,
                          weighted=True)[0]
    # 0 -> 1 is 0.8 in row 0 and 0.6 in row 1: max 0.8; self-loops 1.
    assert torch.allclose(dense(data), torch.tensor([[1, .8], [.8, 1]]) / 1.8)
    assert 'iou' not in data


def test_collate_equals_batch_from_data_list():
    proposals = Proposals(np.array([0, 1, 2, 3, 1, 2, 3]),
                          np.array([0, 2, 4, 7]))
    dataset = ProposalGraphs(X, NEIGHBOR, SIMILARITY, proposals, LABELS,
                             seed_mode='random', seed=3)
    batch = dataset.collate([2, 0])
    expected = Batch.from_data_list([dataset[2], dataset[0]])
    for key in ('x', 'n_id', 'edge_index', 'edge_weight', 'batch', 'ptr',
                'iou', 'iop', 'node_label', 'seed_mask'):
        assert torch.equal(batch[key], expected[key]), key
    assert batch.proposal.tolist() == [2, 0]
    loaded = list(dataset.loader(batch_size=2))
    assert [b.proposal.tolist() for b in loaded] == [[0, 1], [2]]
    shuffled = list(dataset.loader(2, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)))
    assert sorted(sum((b.proposal.tolist() for b in shuffled), [])) == [0, 1,
                                                                         2]


def test_seeds():
    proposals = Proposals(np.array([1, 2, 3, 0]), np.array([0, 4]))
    dataset = ProposalGraphs(X, NEIGHBOR, SIMILARITY, proposals, LABELS,
                             seed_mode='majority')
    data = dataset[0]
    # Labels in stored order (0, 1, 1, 0): tie won by 0, first at node 1.
    assert data.seed_mask.tolist() == [1, 0, 0, 0]
    assert data.node_label.tolist() == [1, 0, 0, 1]
    dataset = ProposalGraphs(X, NEIGHBOR, SIMILARITY, proposals, LABELS,
                             seed_mode='random', seed=0)
    mask = dataset[0].seed_mask
    assert mask.sum() == 1
    seed_label = LABELS[proposals.nodes[int(mask.argmax())]]
    assert dataset[0].node_label.tolist() == (
        LABELS[proposals.nodes] == seed_label).astype(int).tolist()
    assert repr(dataset) == ("ProposalGraphs(1, weighted=False, "
                             "seed_mode='random')")


def test_central_seed():
    # Summed in-proposal kNN similarity: node 0 1.2, 1 1.1, 2 1.1, 3 1.0;
    # without node 0: node 1 0.5, 2 0.9, 3 1.0.
    proposals = Proposals(np.array([1, 2, 3, 0, 1, 2, 3]),
                          np.array([0, 4, 7]))
    dataset = ProposalGraphs(X, NEIGHBOR, SIMILARITY, proposals, LABELS,
                             seed_mode='central')
    batch = dataset.collate([0, 1])
    assert batch.seed_mask.tolist() == [0, 0, 0, 1, 0, 0, 1]
    assert batch.node_label.tolist() == [1, 0, 0, 1, 0, 1, 1]
    unlabeled = ProposalGraphs(X, NEIGHBOR, SIMILARITY, proposals,
                               seed_mode='central')
    assert torch.equal(unlabeled.collate([1, 0]).seed_mask,
                       torch.tensor([0, 0, 1, 0, 0, 0, 1.]))


def test_errors():
    proposals = Proposals(np.array([0, 5]), np.array([0, 2]))
    with pytest.raises(ValueError, match='outside the 4 nodes'):
        ProposalGraphs(X, NEIGHBOR, SIMILARITY, proposals)
    with pytest.raises(ValueError, match='for N=3'):
        ProposalGraphs(X[:3], NEIGHBOR, SIMILARITY, proposals)
    with pytest.raises(ValueError, match='needs labels'):
        ProposalGraphs(X, NEIGHBOR, SIMILARITY,
                       Proposals(np.array([0]), np.array([0, 1])),
                       seed_mode='majority')


def load_graph(folder):
    knn = np.load(folder / 'graph/knns/faiss_k_80.npz')['data']
    x = np.fromfile(folder / 'graph/features.bin', dtype=np.float32)
    x = x.reshape(2000, 256)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    labels = np.loadtxt(folder / 'graph/labels.meta', dtype=np.int64)
    return (torch.from_numpy(x), knn[:, 0].astype(np.int64),
            (1.0 - knn[:, 1]).astype(np.float32), labels)


def test_matches_reference_detection_inputs(reference_fixtures):
    x, neighbor, similarity, labels = load_graph(reference_fixtures)
    expected = np.load(reference_fixtures / 'models/dsgcn_det_io.npz')
    sources = [np.load(reference_fixtures / f'algorithms/proposals_{name}.npz')
               for name in ('basic0', 'iter0', 'basic1')]
    parts = [sources[s]['nodes'][sources[s]['node_offsets'][i]:
                                 sources[s]['node_offsets'][i + 1]]
             for s, i in zip(expected['proposal_source'],
                             expected['proposal_index'], strict=True)]
    proposals = Proposals(np.concatenate(parts),
                          np.r_[0, np.cumsum([len(p) for p in parts])])
    dataset = ProposalGraphs(x, neighbor, similarity, proposals, labels)
    for index, size in enumerate(expected['sizes']):
        data = dataset[index]
        assert torch.allclose(dense(data), torch.from_numpy(
            expected['adj'][index, :size, :size]), rtol=0, atol=1e-7)
        assert torch.equal(data.x, torch.from_numpy(
            expected['features'][index, :size]))
    batch = dataset.collate(range(5))
    assert np.allclose(batch.iou.numpy(), expected['labels'], atol=1e-7)


def test_matches_reference_segmentation_inputs(reference_fixtures):
    x, neighbor, similarity, labels = load_graph(reference_fixtures)
    expected = np.load(reference_fixtures / 'models/dsgcn_seg_io.npz')
    for t in range(2):
        nodes = expected[f's{t}_nodes']
        dataset = ProposalGraphs(x, neighbor, similarity,
                                 Proposals(nodes, np.array([0, nodes.size])),
                                 labels)
        data = dataset[0]
        assert torch.allclose(dense(data), torch.from_numpy(
            expected[f's{t}_adj'][0]), rtol=0, atol=1e-7)
