import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from ltc_pyg.nn.models.gcn_d import GCND, convert_dsgcn_state_dict


def random_graph(num_nodes, seed):
    generator = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(num_nodes, (2, 3 * num_nodes),
                               generator=generator)
    return Data(x=torch.randn(num_nodes, 8, generator=generator),
                edge_index=edge_index,
                edge_weight=torch.rand(edge_index.size(1),
                                       generator=generator))


def test_batched_equals_single():
    torch.manual_seed(0)
    model = GCND(8, (16, 4)).eval()
    graphs = [random_graph(n, seed) for seed, n in enumerate([3, 7, 5])]
    batch = Batch.from_data_list(graphs)
    batched = model(batch.x, batch.edge_index, batch.edge_weight, batch.batch)
    single = torch.cat([model(g.x, g.edge_index, g.edge_weight)
                        for g in graphs])
    assert batched.shape == (3, )
    assert torch.allclose(batched, single, atol=1e-6)


def test_dropout_only_in_training():
    torch.manual_seed(0)
    model = GCND(8, (16, ), dropout=0.5)
    graph = random_graph(6, 0)
    model.eval()
    assert torch.equal(model(graph.x, graph.edge_index),
                       model(graph.x, graph.edge_index))
    model.train()
    outputs = {float(model(graph.x, graph.edge_index).detach())
               for _ in range(5)}
    assert len(outputs) > 1


def test_arguments_and_conversion_errors():
    with pytest.raises(ValueError, match='at least one hidden'):
        GCND(8, ())
    with pytest.raises(ValueError, match=r'dropout must be in \[0, 1\)'):
        GCND(8, (4, ), dropout=1.0)
    with pytest.raises(ValueError, match="Unexpected key 'fc.weight'"):
        convert_dsgcn_state_dict({'fc.weight': torch.zeros(1)})
    converted = convert_dsgcn_state_dict(
        {'module.layers.0.gc.weight': torch.arange(6.).view(2, 3)})
    assert converted['convs.0.lin.weight'].tolist() == [[0, 3], [1, 4],
                                                        [2, 5]]
    assert repr(GCND(8, (4, 2))) == (
        'GCND(8, hidden_channels=[4, 2], dropout=0.5)')


def test_matches_reference(reference_fixtures):
    folder = reference_fixtures / 'models'
    expected = np.load(folder / 'dsgcn_det_io.npz')
    checkpoint = torch.load(folder / 'dsgcn_det.pth', weights_only=True)
    model = GCND(256, (512, 64))
    model.load_original_state_dict(checkpoint['state_dict'])
    model.eval()
    graphs = []
    for index, size in enumerate(expected['sizes']):
        adj = torch.from_numpy(expected['adj'][index, :size, :size])
        target, source = adj.nonzero().t()
        graphs.append(Data(
            x=torch.from_numpy(expected['features'][index, :size]),
            edge_index=torch.stack([source, target]),
            edge_weight=adj[target, source]))
    batch = Batch.from_data_list(graphs)
    with torch.no_grad():
        pred = model(batch.x, batch.edge_index, batch.edge_weight,
                     batch.batch)
        hidden = model.embed(batch.x, batch.edge_index, batch.edge_weight)
    assert np.abs(pred.numpy() - expected['pred'][:, 0]).max() < 1e-5
    for index, size in enumerate(expected['sizes']):
        rows = hidden[batch.ptr[index]:batch.ptr[index + 1]].numpy()
        assert np.abs(rows - expected['layer1_out'][index, :size]).max() < 1e-5
