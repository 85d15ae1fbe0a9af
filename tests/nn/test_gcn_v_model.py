import numpy as np
import pytest
import torch
from torch_geometric.testing import withPackage
from torch_geometric.utils import to_dense_adj

from ltc_pyg.data.io import read_knn
from ltc_pyg.graph.sparse import (
    adjacency_row_block,
    adjacency_rows,
    gcn_adjacency,
)
from ltc_pyg.graph.transforms import knn_to_tensors, to_sparse_adjacency
from ltc_pyg.nn.models import GCNV, convert_original_gcn_v

# Two triangles joined by one weak edge, row-normalised weights (j -> i).
EDGE_INDEX = torch.tensor([[1, 2, 0, 2, 0, 1, 4, 5, 3, 5, 3, 4, 2, 3],
                           [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 3, 2]])


def _graph(seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 8, generator=generator)
    weight = torch.rand(EDGE_INDEX.size(1), generator=generator)
    return x, weight


def test_graph_conv_is_the_paper_formula():
    torch.manual_seed(0)
    model = GCNV(8, 4).eval()
    x, weight = _graph()
    a = to_dense_adj(EDGE_INDEX, edge_attr=weight, max_num_nodes=6)[0].t()
    # Original layout: h = ReLU([x || A x] @ W + b) with W of shape (16, 4).
    w = torch.cat([model.conv.lin_root.weight.t(),
                   model.conv.lin_rel.weight.t()])
    expected = torch.relu(torch.cat([x, a @ x], dim=1) @ w
                          + model.conv.lin_rel.bias)
    out = model(x, EDGE_INDEX, weight)
    assert torch.allclose(out.hidden, expected, atol=1e-6)
    assert torch.allclose(out.confidence, model.head(expected).view(-1),
                          atol=1e-6)


def test_sparse_adjacency_never_builds_edge_messages(monkeypatch, device):
    torch.manual_seed(0)
    model = GCNV(8, 4).to(device).eval()
    x, weight = _graph()
    x = x.to(device)
    reference = model(x, EDGE_INDEX.to(device), weight.to(device))
    adj_t = to_sparse_adjacency(EDGE_INDEX, weight, 6).to(device)

    def no_messages(*args, **kwargs):
        raise AssertionError('per-edge messages were built')

    monkeypatch.setattr(model.conv, 'message', no_messages)
    out = model(x, adj_t)
    assert torch.allclose(out.hidden, reference.hidden, atol=1e-6)
    assert torch.allclose(out.confidence, reference.confidence, atol=1e-6)


def test_row_subsets_equal_full_graph():
    torch.manual_seed(0)
    model = GCNV(8, 4).eval()
    x, weight = _graph()
    adj_t = to_sparse_adjacency(EDGE_INDEX, weight, 6)
    full = model(x, adj_t)
    # Any rows, over the columns they touch.
    rows = torch.tensor([4, 0, 2])
    sub_adj, n_id = adjacency_rows(adj_t, rows)
    assert n_id.tolist() == [0, 1, 2, 3, 5]  # sources into 4, 0 and 2
    part = model((x[n_id], x[rows]), sub_adj)
    assert torch.allclose(part.confidence, full.confidence[rows], atol=1e-6)
    sub_adj, n_id = adjacency_rows(adj_t, torch.tensor([0]))
    assert n_id.tolist() == [1, 2]
    # A block of consecutive rows, over all (global) columns: a view.
    block = adjacency_row_block(adj_t, 2, 5)
    assert block.shape == (3, 6)
    assert torch.equal(block.to_dense(), adj_t.to_dense()[2:5])
    assert block.values().data_ptr() == adj_t.values()[
        int(adj_t.crow_indices()[2]):].data_ptr()
    part = model((x, x[2:5]), block)
    assert torch.allclose(part.confidence, full.confidence[2:5], atol=1e-6)
    assert adjacency_row_block(adj_t, 3, 3).shape == (0, 6)


@withPackage('torch_sparse')
def test_sparse_tensor_layout_matches_csr():
    torch.manual_seed(0)
    model = GCNV(8, 4).eval()
    x, weight = _graph()
    csr = to_sparse_adjacency(EDGE_INDEX, weight, 6)
    sparse = to_sparse_adjacency(EDGE_INDEX, weight, 6, 'sparse_tensor')
    assert torch.allclose(model(x, sparse).confidence,
                          model(x, csr).confidence, atol=1e-6)
    rows = torch.tensor([4, 0, 2])
    sub_csr, n_id = adjacency_rows(csr, rows)
    sub_sparse, n_id_sparse = adjacency_rows(sparse, rows)
    assert torch.equal(n_id, n_id_sparse)
    assert torch.allclose(sub_sparse.to_dense(), sub_csr.to_dense())
    assert torch.equal(adjacency_row_block(sparse, 1, 4).to_dense(),
                       adjacency_row_block(csr, 1, 4).to_dense())


def test_permutation_equivariant():
    torch.manual_seed(0)
    model = GCNV(8, 4).eval()
    x, weight = _graph()
    perm = torch.tensor([3, 5, 0, 1, 4, 2])
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(6)
    out = model(x, EDGE_INDEX, weight).confidence
    permuted = model(x[perm], inverse[EDGE_INDEX], weight).confidence
    assert torch.allclose(permuted, out[perm], atol=1e-6)


def test_repr():
    assert str(GCNV(256, 512)) == 'GCNV(256, hidden_channels=512, dropout=0.0)'


def test_matches_reference_gcn_v(reference_fixtures):
    root = reference_fixtures
    io = np.load(root / 'models' / 'gcn_v_io.npz')
    expected_adj = np.load(root / 'algorithms' / 'gcnv_adjacency.npz')
    x = torch.from_numpy(io['features'])
    neighbor, similarity = knn_to_tensors(read_knn(
        root / 'graph' / 'knns' / 'faiss_k_80.npz'))
    adj_t = gcn_adjacency(x, neighbor, similarity, 0.0)
    coo = adj_t.to_sparse_coo().coalesce()
    np.testing.assert_array_equal(coo.indices().numpy(),
                                  expected_adj['indices'])
    np.testing.assert_allclose(coo.values().numpy(), expected_adj['values'],
                               atol=1e-7)
    checkpoint = torch.load(root / 'models' / 'gcn_v.pth', weights_only=True)
    model = GCNV(256, 512)
    model.load_state_dict(convert_original_gcn_v(checkpoint['state_dict']))
    model.eval()
    with torch.no_grad():
        out = model(x, adj_t)
    np.testing.assert_allclose(out.confidence.numpy(), io['pred'], atol=1e-5)
    np.testing.assert_allclose(out.hidden.numpy(), io['gcn_feat'], atol=1e-5)
    loss = torch.nn.functional.mse_loss(out.confidence,
                                        torch.from_numpy(io['labels']))
    assert abs(float(loss) - float(io['loss'])) < 1e-5


def test_converter_rejects_other_state_dicts():
    with pytest.raises(ValueError, match='Not an original gcn_v state dict'):
        convert_original_gcn_v({'conv1.weight': torch.zeros(4, 2)})
