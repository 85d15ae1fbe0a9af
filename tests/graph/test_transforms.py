import pytest
import torch
import torch.nn.functional as F
import torch_geometric.transforms as T
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from ltc_pyg.graph.transforms import (
    KNNAffinityGraph,
    RowNormalize,
    ToSparseAdjacency,
    knn_to_edges,
    row_normalize,
    symmetrize_max,
    to_sparse_adjacency,
)

# Two pairs: 0-1 and 2-3 (a weak link between the pairs via 1-2).
X = F.normalize(torch.tensor([[1., 0.], [.9, .1], [0., 1.], [.1, .9]]))


def test_two_pairs_k2():
    data = KNNAffinityGraph(k=2)(Data(x=X))
    # Row i's neighbour is the source of the edge into i.
    assert data.edge_index.tolist() == [[1, 0, 3, 2], [0, 1, 2, 3]]
    assert torch.allclose(data.edge_weight, (X[[1, 0, 3, 2]] * X).sum(1))
    assert data.knn_neighbor.tolist() == [[0, 1], [1, 0], [2, 3], [3, 2]]


def test_min_similarity_symmetric_and_self_loops():
    data = KNNAffinityGraph(k=3, min_similarity=0.5, symmetric=True,
                            self_loops=True)(Data(x=X))
    edges = set(map(tuple, data.edge_index.t().tolist()))
    # sim(1, 2) = 0.18/0.82 < 0.5 is dropped; the pairs stay; self-loops.
    assert edges == {(0, 1), (1, 0), (2, 3), (3, 2), (0, 0), (1, 1), (2, 2),
                     (3, 3)}
    loops = data.edge_index[0] == data.edge_index[1]
    assert torch.all(data.edge_weight[loops] == 1)


def test_transform_leaves_input_unchanged_and_reuses_knn():
    data = Data(x=X.clone())
    out = KNNAffinityGraph(k=2)(data)
    assert 'edge_index' not in data and torch.equal(data.x, X)
    # Reuses carried kNN arrays instead of searching (here: deliberately
    # different ones).
    carried = Data(x=X, knn_neighbor=torch.tensor([[0, 3], [1, 2], [2, 1],
                                                   [3, 0]]),
                   knn_similarity=torch.ones(4, 2))
    reused = KNNAffinityGraph(k=2)(carried)
    assert reused.edge_index.tolist() == [[3, 2, 1, 0], [0, 1, 2, 3]]
    assert out.edge_index.tolist() != reused.edge_index.tolist()


def test_repr():
    assert str(KNNAffinityGraph(k=80, method='ivf', num_probes=32)) == (
        'KNNAffinityGraph(k=80, method=ivf, min_similarity=None, '
        'symmetric=False, self_loops=False, device=cpu, num_probes=32)')
    with pytest.raises(ValueError, match="'k' must be at least 1"):
        KNNAffinityGraph(k=0)


def test_knn_to_edges_removes_self_by_id():
    neighbor = torch.tensor([[1, 0], [1, 0]])  # row 0: self not first
    similarity = torch.tensor([[.9, 1.], [1., .9]])
    edge_index, weight = knn_to_edges(neighbor, similarity)
    assert edge_index.tolist() == [[1, 0], [0, 1]]
    assert weight.tolist() == pytest.approx([.9, .9])


def test_symmetrize_max_is_pygs_to_undirected_with_max():
    edge_index = torch.tensor([[0, 1, 2], [1, 0, 0]])
    weight = torch.tensor([.5, .7, .2])
    sym_index, sym_weight = symmetrize_max(edge_index, weight, 3)
    assert sym_index.tolist() == [[0, 0, 1, 2], [1, 2, 0, 0]]
    assert sym_weight.tolist() == pytest.approx([.7, .2, .7, .2])
    pyg_index, pyg_weight = to_undirected(edge_index, weight, 3,
                                          reduce='max')
    assert torch.equal(sym_index, pyg_index)
    assert torch.equal(sym_weight, pyg_weight)


def test_row_normalize_sums_to_one_per_target():
    edge_index = torch.tensor([[1, 2, 0], [0, 0, 1]])
    weight = torch.tensor([1., 3., 2.])
    assert row_normalize(edge_index, weight, 3).tolist() == [.25, .75, 1.]
    data = RowNormalize()(Data(edge_index=edge_index, num_nodes=3))
    assert data.edge_weight.tolist() == [.5, .5, 1.]


def test_sparse_adjacency_computes_weighted_sum_into_targets():
    edge_index = torch.tensor([[1, 2, 0], [0, 0, 1]])
    weight = torch.tensor([1., 3., 2.])
    x = torch.tensor([[1., 0.], [0., 1.], [2., 2.]])
    adj_t = to_sparse_adjacency(edge_index, weight, 3)
    assert adj_t.layout == torch.sparse_csr
    expected = torch.tensor([[6., 7.], [2., 0.], [0., 0.]])
    assert torch.allclose(adj_t @ x, expected)
    data = Data(edge_index=edge_index, edge_weight=weight, num_nodes=3)
    ours = ToSparseAdjacency()(data)
    assert 'edge_index' not in ours and 'edge_weight' not in ours
    pyg = T.ToSparseTensor(attr='edge_weight', layout=torch.sparse_csr)(data)
    for get in ('crow_indices', 'col_indices', 'values'):
        assert torch.equal(getattr(ours.adj_t, get)(),
                           getattr(pyg.adj_t, get)())
    with pytest.raises(ValueError, match="Unknown layout 'coo'"):
        ToSparseAdjacency('coo')
    with pytest.raises(ValueError, match="Unknown layout 'coo'"):
        to_sparse_adjacency(edge_index, weight, 3, layout='coo')
