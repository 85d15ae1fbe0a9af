import numpy as np
import torch
from torch_geometric.data import Batch, Data

from ltc_pyg.graph.transforms import to_sparse_adjacency
from ltc_pyg.nn.models import LGCN, convert_original_lgcn

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
