import torch
from torch_geometric.nn import GraphConv

from ltc_pyg.graph.transforms import to_sparse_adjacency
from ltc_pyg.nn.conv import AffinityConv


def graph():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, generator=generator)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5, 0], [1, 2, 0, 4, 5, 3, 3]])
    weight = torch.rand(7, generator=generator)
    return x, edge_index, weight


def test_equals_graph_conv():
    x, edge_index, weight = graph()
    torch.manual_seed(0)
    conv = AffinityConv(4, 3)
    reference = GraphConv(4, 3)
    reference.load_state_dict(conv.state_dict())
    expected = reference(x, edge_index, weight)
    assert torch.allclose(conv(x, edge_index, weight), expected, atol=1e-6)
    adj_t = to_sparse_adjacency(edge_index, weight, 6)
    assert torch.allclose(conv(x, adj_t), expected, atol=1e-6)


def test_bfloat16_autocast_keeps_sparse_aggregation_in_float32():
    x, edge_index, weight = graph()
    torch.manual_seed(0)
    conv = AffinityConv(4, 3)
    adj_t = to_sparse_adjacency(edge_index, weight, 6)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = conv(x, adj_t)
        # Fed bfloat16 (the previous layer's output), it still aggregates.
        again = conv(x.bfloat16(), adj_t)
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), conv(x, adj_t), atol=5e-2)
    assert torch.allclose(again.float(), out.float(), atol=5e-2)
