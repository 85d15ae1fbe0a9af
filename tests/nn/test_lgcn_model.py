import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GraphConv, LEConv

from ltc_pyg.graph.sparse import adjacency_rows
from ltc_pyg.graph.transforms import to_sparse_adjacency
from ltc_pyg.nn.models import LGCN, convert_original_lgcn
from ltc_pyg.nn.models.lgcn import graph_conv
from ltc_pyg.proposals import PivotSubgraphs

# A path 0 - 1 - 2 with row-normalised weights into each target.
EDGE_INDEX = torch.tensor([[1, 0, 2, 1], [0, 1, 1, 2]])
EDGE_WEIGHT = torch.tensor([1.0, 0.5, 0.5, 1.0])


def small_model(seed: int = 0) -> LGCN:
    torch.manual_seed(seed)
    return LGCN(3, hidden_channels=(4, 2)).eval()


def test_lgcn_formula_by_hand(device):
    model = small_model().to(device)
    x = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0], [3.0, 1.0, 1.0]],
                     device=device)
    adjacency = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5],
                              [0.0, 1.0, 0.0]], device=device)
    h = x / (1 + 1e-5)**0.5  # fresh running stats: mean 0, variance 1
    for conv in model.convs:
        h = (conv.lin_root(h) + conv.lin_rel(adjacency @ h)).relu()
    expected = model.head(h[[2, 0]])
    edge_index, edge_weight = EDGE_INDEX.to(device), EDGE_WEIGHT.to(device)
    one_hop = torch.tensor([2, 0], device=device)
    torch.testing.assert_close(model(x, edge_index, one_hop, edge_weight),
                               expected)
    adj_t = to_sparse_adjacency(EDGE_INDEX, EDGE_WEIGHT, 3).to(device)
    torch.testing.assert_close(model(x, adj_t, one_hop), expected)
    assert model(x, adj_t, one_hop).shape == (2, 2)


def test_lgcn_batched_equals_single():
    model = small_model()
    generator = torch.Generator().manual_seed(1)
    graphs = [Data(x=torch.randn(3, 3, generator=generator),
                   edge_index=EDGE_INDEX, edge_weight=EDGE_WEIGHT,
                   one_hop_index=torch.tensor([1, 2])) for _ in range(3)]
    batch = Batch.from_data_list(graphs)
    batched = model(batch.x, batch.edge_index, batch.one_hop_index,
                    batch.edge_weight)
    single = torch.cat([model(g.x, g.edge_index, g.one_hop_index,
                              g.edge_weight) for g in graphs])
    torch.testing.assert_close(batched, single)


def test_lgcn_is_permutation_equivariant():
    model = small_model()
    x = torch.randn(3, 3, generator=torch.Generator().manual_seed(2))
    perm = torch.tensor([2, 0, 1])
    inverse = torch.argsort(perm)
    out = model.embed(x, EDGE_INDEX, EDGE_WEIGHT)
    permuted = model.embed(x[perm], inverse[EDGE_INDEX], EDGE_WEIGHT)
    torch.testing.assert_close(permuted, out[perm])


def test_lgcn_repr():
    assert str(LGCN()) == 'LGCN(256, hidden_channels=(512, 512, 256, 256))'


def test_lgcn_matches_original_checkpoint(reference_fixtures):
    root = reference_fixtures
    state = torch.load(root / 'models' / 'lgcn.pth',
                       weights_only=True)['state_dict']
    model = LGCN(256)
    model.load_state_dict(convert_original_lgcn(state))
    model.eval()
    io = np.load(root / 'models' / 'lgcn_io.npz')
    sizes = np.load(root / 'algorithms' / 'lgcn_ips.npz')['num_nodes']
    # Unpad the reference's [3, 121, ...] blocks and concatenate them.
    xs, edges, weights, one_hops, offset = [], [], [], [], 0
    for b, size in enumerate(sizes):
        xs.append(torch.from_numpy(io['features'][b, :size]))
        adjacency = torch.from_numpy(io['adj'][b, :size, :size])
        target, source = adjacency.nonzero(as_tuple=True)
        edges.append(torch.stack([source, target]) + offset)
        weights.append(adjacency[target, source])
        one_hops.append(torch.from_numpy(io['one_hop_idxs'][b]) + offset)
        offset += int(size)
    x = torch.cat(xs)
    adj_t = to_sparse_adjacency(torch.cat(edges, 1), torch.cat(weights),
                                offset)
    one_hop = torch.cat(one_hops)
    with torch.no_grad():
        normalised = model.norm(x)
        hidden = model.embed(x, adj_t)
        logits = model(x, adj_t, one_hop)
    padded_rows = np.concatenate([b * 121 + np.arange(size)
                                  for b, size in enumerate(sizes)])
    np.testing.assert_allclose(normalised.numpy(), io['bn0_out'][padded_rows],
                               atol=1e-5)
    np.testing.assert_allclose(
        hidden.numpy(), io['conv4_out'].reshape(-1, 256)[padded_rows],
        atol=1e-5)
    np.testing.assert_allclose(logits.numpy(), io['pred'], atol=1e-5)
    np.testing.assert_allclose(logits.softmax(1)[:, 1].numpy(),
                               io['edge_scores'], atol=1e-6)
    loss = torch.nn.functional.cross_entropy(
        logits, torch.from_numpy(io['labels']).view(-1))
    assert abs(loss.item() - float(io['loss'])) < 1e-5


def pivot_graph(num_nodes: int = 60, k: int = 8) -> Data:
    r"""float64 points with their exact kNN rows (each node first)."""
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(num_nodes, 5, generator=generator, dtype=torch.float64)
    neighbor = torch.cdist(x, x).argsort(dim=1)[:, :k]
    return Data(x=x, knn_neighbor=neighbor, num_nodes=num_nodes)


def pivot_model(hidden: tuple[int, ...]) -> LGCN:
    torch.manual_seed(4)
    model = LGCN(5, hidden).double()
    model.norm.running_mean.uniform_(-1, 1)
    model.norm.running_var.uniform_(0.5, 2)
    return model.eval()


@pytest.mark.parametrize('hidden', [(16, 8, 12), (6, ), (7, 3)])
def test_lgcn_pivot_forward_equals_forward(hidden):
    graph, model = pivot_graph(), pivot_model(hidden)
    transform = PivotSubgraphs(k_at_hop=(5, 3), active_connection=3)
    pivots = torch.tensor([7, 0, 59, 31, 12])
    batch = transform.subgraphs(graph, pivots)
    adj_t = to_sparse_adjacency(batch.edge_index, batch.edge_weight.double(),
                                batch.num_nodes)
    with torch.no_grad():
        expected = model(batch.x, adj_t, batch.one_hop_index)
        projected = model.project(graph.x, batch_size=7)
        fast = model.pivot_forward(projected, batch.n_id,
                                   pivots[batch.batch], adj_t,
                                   batch.one_hop_index)
        # The batch equals its parts.
        parts = []
        for pivot in pivots.view(-1, 1):
            single = transform.subgraphs(graph, pivot)
            parts.append(model.pivot_forward(
                projected, single.n_id, pivot.expand(single.num_nodes),
                to_sparse_adjacency(single.edge_index,
                                    single.edge_weight.double(),
                                    single.num_nodes), single.one_hop_index))
    assert fast.shape == (5 * 5, 2)
    torch.testing.assert_close(fast, expected, rtol=0, atol=1e-10)
    torch.testing.assert_close(torch.cat(parts), fast, rtol=0, atol=1e-10)


def test_lgcn_graph_conv_equals_the_layer():
    generator = torch.Generator().manual_seed(5)
    adj_t = to_sparse_adjacency(EDGE_INDEX, EDGE_WEIGHT, 3).double()
    for in_channels, out_channels in ((4, 2), (2, 4)):  # both orders
        torch.manual_seed(in_channels)
        conv = GraphConv(in_channels, out_channels).double()
        x = torch.randn(3, in_channels, generator=generator,
                        dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close(graph_conv(conv, x, x, adj_t),
                                       conv(x, adj_t))
            # Bipartite: the rows of targets 2 and 0 over their sources.
            rows, columns = adjacency_rows(adj_t, torch.tensor([2, 0]))
            pair = (x[columns], x[[2, 0]])
            torch.testing.assert_close(graph_conv(conv, *pair, rows),
                                       conv(pair, rows))


def test_lgcn_project_needs_eval_mode_and_graph_conv():
    x = torch.randn(4, 3)
    assert small_model().projectable
    with pytest.raises(ValueError, match='training=True'):
        small_model().train().project(x)
    other = LGCN(3, hidden_channels=(4, 2), conv=LEConv).eval()
    assert not other.projectable
    with pytest.raises(ValueError, match="'LEConv', 'LEConv'"):
        other.project(x)
