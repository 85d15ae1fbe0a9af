import torch

from ltc_pyg.graph.transforms import to_sparse_adjacency
from ltc_pyg.nn.conv.ds_conv import DSConv


def make_conv():
    conv = DSConv(2, 1)
    with torch.no_grad():
        conv.lin.weight.copy_(torch.tensor([[1.0, -1.0]]))
    return conv


def test_hand_computed():
    conv = make_conv()
    x = torch.tensor([[3.0, 1.0], [1.0, 2.0], [0.0, 4.0]])  # xW = 2, -1, -4
    edge_index = torch.tensor([[0, 1, 1, 2], [0, 0, 1, 1]])
    edge_weight = torch.tensor([1.0, 3.0, 1.0, 1.0])
    out = conv(x, edge_index, edge_weight)
    # Node 0: (1*2 + 3*-1) / 4 = -0.25 -> ReLU 0; node 1: (-1 - 4) / 2 -> 0;
    # node 2 has no incoming weight -> 0.
    assert out.view(-1).tolist() == [0.0, 0.0, 0.0]
    edge_weight = torch.tensor([3.0, 1.0, 1.0, 1.0])
    out = conv(x, edge_index, edge_weight)
    assert out.view(-1).tolist() == [1.25, 0.0, 0.0]
    # Without weights every edge counts 1: node 0 = (2 - 1) / 2.
    assert conv(x, edge_index).view(-1).tolist() == [0.5, 0.0, 0.0]


def test_sparse_adjacency_matches_edges():
    torch.manual_seed(0)
    conv = DSConv(4, 3)
    x = torch.randn(5, 4)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 0, 2], [1, 0, 3, 2, 0, 0, 2]])
    edge_weight = torch.rand(7)
    adj_t = to_sparse_adjacency(edge_index, edge_weight, 5)
    assert torch.allclose(conv(x, edge_index, edge_weight), conv(x, adj_t),
                          atol=1e-6)
    assert repr(conv) == 'DSConv(4, 3)'
