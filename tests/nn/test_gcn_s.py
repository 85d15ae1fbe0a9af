import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from ltc_pyg.nn.models.gcn_s import GCNS, seed_products


def random_graphs(seed_at_end: bool = False) -> list[Data]:
    r"""Graphs of 3 and 5 nodes, 4-d features, the seed first or last."""
    graphs = []
    for seed, n in enumerate([3, 5]):
        generator = torch.Generator().manual_seed(seed)
        graphs.append(Data(x=torch.randn(n, 4, generator=generator),
                           edge_index=torch.randint(n, (2, 2 * n),
                                                    generator=generator),
                           seed_mask=torch.eye(n)[n - 1 if seed_at_end
                                                  else 0]))
    return graphs


def test_batched_equals_single_with_seed():
    torch.manual_seed(0)
    model = GCNS(4, (8, ), use_seed=True).eval()
    graphs = random_graphs()
    batch = Batch.from_data_list(graphs)
    batched = model(batch.x, batch.edge_index, seed_mask=batch.seed_mask)
    single = torch.cat([model(g.x, g.edge_index, seed_mask=g.seed_mask)
                        for g in graphs])
    assert batched.shape == (8, 2)
    assert torch.allclose(batched, single, atol=1e-6)
    assert torch.allclose(batched.exp().sum(-1), torch.ones(8))
    assert model.convs[0].in_channels == 5


def test_seed_required_and_repr():
    model = GCNS(4, (8, ))
    with pytest.raises(ValueError, match='needs seed_mask'):
        model(torch.zeros(2, 4), torch.zeros(2, 0, dtype=torch.long))
    no_seed = GCNS(4, (8, ), use_seed=False).eval()
    assert no_seed(torch.zeros(2, 4),
                   torch.zeros(2, 0, dtype=torch.long)).shape == (2, 2)
    assert repr(model) == ('GCNS(4, hidden_channels=[8], dropout=0.5, '
                           'use_seed=True, compare_to_seed=False)')
    with pytest.raises(ValueError, match='needs use_seed=True'):
        GCNS(4, (8, ), use_seed=False, compare_to_seed=True)


def test_seed_products():
    x = torch.tensor([[.6, .8], [1., 0.], [0., 1.], [.8, .6], [1., 0.]])
    batch = torch.tensor([0, 0, 0, 1, 1])
    seed_mask = torch.tensor([0, 1, 0, 0, 1])
    out = seed_products(x, seed_mask, batch)
    # D * x_i * x_seed; row sums are D * cos(x_i, x_seed).
    assert torch.allclose(out, torch.tensor(
        [[1.2, 0], [2, 0], [0, 0], [1.6, 0], [2, 0]]))
    assert torch.allclose(out.sum(1), torch.tensor([1.2, 2, 0, 1.6, 2]))
    with pytest.raises(ValueError, match='graph 1 has 0'):
        seed_products(x, torch.tensor([0, 1, 0, 0, 0]), batch)
    with pytest.raises(ValueError, match='graph 0 has 2'):
        seed_products(x, torch.tensor([1, 1, 0, 0, 1]), batch)
    # One graph without a batch vector.
    assert torch.allclose(seed_products(x[:3], seed_mask[:3]), out[:3])


def test_compare_to_seed_batched_equals_single():
    torch.manual_seed(0)
    model = GCNS(4, (8, ), compare_to_seed=True).eval()
    graphs = random_graphs(seed_at_end=True)
    batch = Batch.from_data_list(graphs)
    batched = model(batch.x, batch.edge_index, seed_mask=batch.seed_mask,
                    batch=batch.batch)
    single = torch.cat([model(g.x, g.edge_index, seed_mask=g.seed_mask)
                        for g in graphs])
    assert torch.allclose(batched, single, atol=1e-6)
    # The products, not the raw features, reach the first layer.
    plain = GCNS(4, (8, )).eval()
    plain.load_state_dict(model.state_dict())
    assert not torch.allclose(plain(batch.x, batch.edge_index,
                                    seed_mask=batch.seed_mask), batched)


def test_matches_reference(reference_fixtures):
    folder = reference_fixtures / 'models'
    expected = np.load(folder / 'dsgcn_seg_io.npz')
    checkpoint = torch.load(folder / 'dsgcn_seg.pth', weights_only=True)
    model = GCNS(256, (512, 64), use_seed=True)
    model.load_original_state_dict(checkpoint['state_dict'])
    model.eval()
    for t in range(2):
        features = torch.from_numpy(expected[f's{t}_features'][0])
        adj = torch.from_numpy(expected[f's{t}_adj'][0])
        target, source = adj.nonzero().t()
        with torch.no_grad():
            out = model(features[:, :256], torch.stack([source, target]),
                        adj[target, source], seed_mask=features[:, 256])
        assert np.abs(out.numpy().T - expected[f's{t}_pred'][0]).max() < 1e-5
        assert np.abs(out.exp()[:, 1].numpy() -
                      expected[f's{t}_outlier_score'][0]).max() < 1e-5
