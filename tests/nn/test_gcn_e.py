import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.utils import dense_to_sparse, to_dense_adj

from ltc_pyg.graph.transforms import to_sparse_adjacency
from ltc_pyg.nn.models import GCNE, convert_original_gcn_e


def _subgraph(num_nodes, seed):
    generator = torch.Generator().manual_seed(seed)
    dense = torch.rand(num_nodes, num_nodes, generator=generator)
    dense = dense / dense.sum(1, keepdim=True)  # rows sum to 1
    edge_index, edge_weight = dense_to_sparse(dense.t())  # q -> p
    return Data(x=torch.randn(num_nodes, 8, generator=generator),
                edge_index=edge_index, edge_weight=edge_weight)


def test_layers_are_the_paper_formula():
    torch.manual_seed(0)
    model = GCNE(8, 6).eval()
    data = _subgraph(5, 0)
    a = to_dense_adj(data.edge_index, edge_attr=data.edge_weight)[0].t()
    h = data.x
    for conv in model.convs:
        w = torch.cat([conv.lin_root.weight.t(), conv.lin_rel.weight.t()])
        h = torch.relu(torch.cat([h, a @ h], dim=1) @ w + conv.lin_rel.bias)
    assert [conv.out_channels for conv in model.convs] == [6, 6, 3, 3]
    assert torch.allclose(model.embed(data.x, data.edge_index,
                                      data.edge_weight), h, atol=1e-6)
    assert torch.allclose(model(data.x, data.edge_index, data.edge_weight),
                          model.head(h), atol=1e-6)


def test_batched_equals_single_and_sparse_equals_edges():
    torch.manual_seed(0)
    model = GCNE(8, 6).eval()
    graphs = [_subgraph(n, seed) for seed, n in enumerate((3, 1, 7))]
    batch = Batch.from_data_list(graphs)
    out = model(batch.x, batch.edge_index, batch.edge_weight)
    single = torch.cat([model(g.x, g.edge_index, g.edge_weight)
                        for g in graphs])
    assert torch.allclose(out, single, atol=1e-6)
    adj_t = to_sparse_adjacency(batch.edge_index, batch.edge_weight,
                                batch.num_nodes)
    assert torch.allclose(model(batch.x, adj_t), out, atol=1e-6)


def test_hidden_channels_must_be_even():
    with pytest.raises(ValueError, match=r'even and at least 2 \(got 5\)'):
        GCNE(8, 5)
    assert str(GCNE()) == 'GCNE(512, hidden_channels=512, dropout=0.0)'


def test_matches_reference_gcn_e(reference_fixtures):
    root = reference_fixtures
    io = np.load(root / 'models' / 'gcn_e_io.npz')
    checkpoint = torch.load(root / 'models' / 'gcn_e.pth', weights_only=True)
    model = GCNE(512, 512)
    model.load_state_dict(convert_original_gcn_e(checkpoint['state_dict']))
    model.eval()
    graphs = []
    for t in range(3):
        edge_index, edge_weight = dense_to_sparse(
            torch.from_numpy(io[f's{t}_adj'][0]).t())
        graphs.append(Data(x=torch.from_numpy(io[f's{t}_features'][0]),
                           edge_index=edge_index, edge_weight=edge_weight,
                           y=torch.from_numpy(io[f's{t}_labels'][0])))
    batch = Batch.from_data_list(graphs)
    with torch.no_grad():
        logits = model(batch.x, batch.edge_index, batch.edge_weight)
        hidden = model.embed(batch.x, batch.edge_index, batch.edge_weight)
    for t in range(3):
        part = slice(int(batch.ptr[t]), int(batch.ptr[t + 1]))
        log_prob = logits[part].log_softmax(dim=-1)
        np.testing.assert_allclose(log_prob.numpy(), io[f's{t}_pred'],
                                   atol=1e-5)
        np.testing.assert_allclose(hidden[part].numpy(),
                                   io[f's{t}_conv4_out'][0], atol=1e-5)
        loss = torch.nn.functional.cross_entropy(logits[part], graphs[t].y)
        assert abs(float(loss) - float(io[f's{t}_loss'])) < 1e-5
