import torch
from torch_geometric.data import Batch, Data

from ltc_pyg.nn.models import EdgeScorer, NeighborhoodContext


def _graph(seed: int, num_nodes: int) -> Data:
    generator = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, 3 * num_nodes),
                               generator=generator)
    return Data(edge_index=edge_index, num_nodes=num_nodes,
                edge_attr=torch.rand(3 * num_nodes, 4, generator=generator))


def test_context_is_the_mean_and_max_of_incoming_edges():
    layer = NeighborhoodContext(2, 3)
    assert repr(layer) == 'NeighborhoodContext(2, 3)'
    edge_index = torch.tensor([[1, 2, 0], [0, 0, 1]])
    edge_attr = torch.tensor([[1.0, 4.0], [3.0, 2.0], [5.0, 6.0]])
    summary = torch.tensor([[2.0, 3.0, 3.0, 4.0], [5.0, 6.0, 5.0, 6.0],
                            [0.0, 0.0, 0.0, 0.0]])
    expected = layer.lin(summary).relu()
    assert torch.allclose(layer(edge_index, edge_attr, 3), expected)


def test_a_batch_scores_like_its_parts():
    torch.manual_seed(0)
    model = EdgeScorer(4, hidden_channels=8).eval()
    graphs = [_graph(1, 6), _graph(2, 9)]
    model.set_scaling(torch.cat([g.edge_attr for g in graphs]))
    batch = Batch.from_data_list(graphs)
    together = model(batch.edge_index, batch.edge_attr, batch.num_nodes)
    apart = torch.cat([model(g.edge_index, g.edge_attr, g.num_nodes)
                       for g in graphs])
    assert together.shape == (45,)
    assert torch.allclose(together, apart, atol=1e-6)
    chosen = torch.tensor([0, 20, 44])
    assert torch.allclose(model(batch.edge_index, batch.edge_attr,
                                batch.num_nodes, chosen), together[chosen])


def test_scaling_is_saved_with_the_weights():
    model = EdgeScorer(2)
    model.set_scaling(torch.tensor([[0.0, 10.0], [2.0, 30.0]]))
    copy = EdgeScorer(2)
    copy.load_state_dict(model.state_dict())
    assert torch.allclose(copy.feature_mean, torch.tensor([1.0, 20.0]))
    assert torch.allclose(copy.feature_std,
                          torch.tensor([2 ** 0.5, 200 ** 0.5]))
