import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from ltc_pyg.data.io import read_features, read_knn
from ltc_pyg.graph.knn import l2_normalize
from ltc_pyg.proposals.pivot import (
    PivotSubgraphs,
    covering_pivots,
    nearest_others,
)

# Two groups on a chain: 0-1-2 (label 0) and 3-4-5 (label 1); k = 3.
NEIGHBOR = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 1, 3], [3, 2, 4],
                         [4, 5, 3], [5, 4, 3]])
X = torch.arange(12, dtype=torch.float).view(6, 2)
Y = torch.tensor([0, 0, 0, 1, 1, 1])
KEYS = ['x', 'edge_index', 'edge_weight', 'n_id', 'pivot_index',
        'one_hop_index', 'y']


def chain_graph(y: torch.Tensor | None = Y) -> Data:
    data = Data(x=X.clone(), knn_neighbor=NEIGHBOR.clone(), num_nodes=6)
    if y is not None:
        data.y = y.clone()
    return data


def test_nearest_others_drops_the_node_by_id():
    neighbor = torch.tensor([[1, 0, 2], [1, 2, 0], [2, 0, 1]])
    assert nearest_others(neighbor, torch.tensor([0, 1, 2]), 2).tolist() == [
        [1, 2], [2, 0], [0, 1]]
    assert nearest_others(neighbor, torch.tensor([2, 2]), 1).tolist() == [
        [0], [0]]
    # The usual rows, each node first, are sliced: the same values.
    assert nearest_others(NEIGHBOR, torch.tensor([4, 0]), 2).tolist() == [
        [5, 3], [1, 2]]


def two_cliques() -> torch.Tensor:
    r"""kNN rows (k = 4) of two 4-cliques, 0-3 and 4-7."""
    rows = []
    for node in range(8):
        first = node - node % 4
        rows.append([node] + [other for other in range(first, first + 4)
                              if other != node])
    return torch.tensor(rows)


@pytest.mark.parametrize('coverage', [1, 2, 3, 4, 9])
def test_covering_pivots_by_hand(coverage):
    # Visited one at a time: a clique's first c visited nodes become pivots
    # (each reaches the other three once), then the rest are reached c times.
    for seed in range(3):
        generator = torch.Generator().manual_seed(seed)
        pivots = covering_pivots(two_cliques(), 3, coverage, generator,
                                 rounds=8)
        assert torch.equal(pivots, pivots.sort().values)
        per_clique = torch.bincount(pivots // 4, minlength=2)
        assert per_clique.tolist() == [min(coverage, 4)] * 2
    # One round: nothing is reached before the visit, every node is a pivot.
    assert covering_pivots(two_cliques(), 3, 1, rounds=1).tolist() == (
        list(range(8)))


def test_covering_pivots_reach_every_node():
    generator = torch.Generator().manual_seed(0)
    neighbor = torch.cat([torch.arange(300).view(-1, 1),
                          torch.randint(300, (300, 9), generator=generator)],
                         dim=1)
    for coverage in (1, 3):
        pivots = covering_pivots(neighbor, 9, coverage,
                                 torch.Generator().manual_seed(1),
                                 rounds=20)
        reached = torch.bincount(
            nearest_others(neighbor, pivots, 9).reshape(-1), minlength=300)
        is_pivot = torch.zeros(300, dtype=torch.bool)
        is_pivot[pivots] = True
        assert ((reached >= coverage) | is_pivot).all()
        assert pivots.numel() < 300
        assert torch.equal(pivots, covering_pivots(
            neighbor, 9, coverage, torch.Generator().manual_seed(1),
            rounds=20))
    with pytest.raises(ValueError, match='coverage >= 1'):
        covering_pivots(neighbor, 9, 0)


def test_pivot_subgraph_of_one_pivot_by_hand():
    transform = PivotSubgraphs(k_at_hop=(2, 1), active_connection=1)
    sub = transform.subgraphs(chain_graph(), torch.tensor([3]))
    # Pivot 3, one-hop 2 and 4, two-hop 1 (of 2) and 5 (of 4).
    assert sub.n_id.tolist() == [3, 2, 4, 1, 5]
    assert torch.equal(sub.x, X[[3, 2, 4, 1, 5]] - X[3])
    # Links to the nearest other node: 3-2, 2-1, 4-5 (1 -> 0 leaves).
    assert sub.edge_index.tolist() == [[0, 1, 1, 2, 3, 4],
                                       [1, 0, 3, 4, 1, 2]]
    assert sub.edge_weight.tolist() == [0.5, 1.0, 1.0, 1.0, 0.5, 1.0]
    assert sub.pivot_index.tolist() == [0]
    assert sub.one_hop_index.tolist() == [1, 2]
    assert sub.y.tolist() == [0, 1]
    assert sub.batch.tolist() == [0] * 5 and sub.ptr.tolist() == [0, 5]


def test_pivot_subgraphs_batch_is_shifted_and_equals_singles():
    transform = PivotSubgraphs(k_at_hop=(2, 1), active_connection=1)
    graph = chain_graph()
    batch = transform.subgraphs(graph, torch.tensor([0, 3]))
    assert batch.n_id.tolist() == [0, 1, 2, 3, 2, 4, 1, 5]
    assert batch.pivot_index.tolist() == [0, 3]
    assert batch.one_hop_index.tolist() == [1, 2, 4, 5]
    assert batch.edge_index.tolist() == [[0, 1, 1, 2, 3, 4, 4, 5, 6, 7],
                                         [1, 0, 2, 1, 4, 3, 6, 7, 4, 5]]
    assert batch.edge_weight.tolist() == [0.5, 1.0, 1.0, 0.5, 0.5, 1.0, 1.0,
                                          1.0, 0.5, 1.0]
    assert batch.y.tolist() == [1, 1, 0, 1]
    assert batch.num_graphs == 2 and batch.ptr.tolist() == [0, 3, 8]
    singles = Batch.from_data_list([
        Data(**{key: transform.subgraphs(graph, torch.tensor([p]))[key]
                for key in KEYS}) for p in (0, 3)])
    for key in KEYS + ['batch', 'ptr']:
        assert torch.equal(batch[key], singles[key]), key


def test_pivot_subgraphs_structure_is_subgraphs_without_features():
    transform = PivotSubgraphs(k_at_hop=(2, 1), active_connection=1)
    pivots = torch.tensor([3, 0, 5])
    full = transform.subgraphs(chain_graph(), pivots)
    structure = transform.structure(NEIGHBOR, pivots)
    assert sorted(structure.keys()) == sorted(
        set(full.keys()) - {'x', 'y'})
    for key in set(structure.keys()) - {'num_nodes'}:
        assert torch.equal(structure[key], full[key]), key
    assert structure.num_nodes == full.num_nodes == 12


def test_pivot_subgraphs_transform_covers_every_node_and_keeps_input():
    graph = chain_graph()
    transform = PivotSubgraphs(k_at_hop=(200, 10), active_connection=10)
    assert transform.counts(3) == (2, 2, 2)
    batch = transform(graph)
    assert batch.num_graphs == 6
    assert batch.n_id[batch.pivot_index].tolist() == list(range(6))
    assert torch.equal(graph.x, X) and torch.equal(graph.knn_neighbor,
                                                   NEIGHBOR)
    assert torch.equal(graph.y, Y)


def test_pivot_subgraphs_unknown_labels_never_link():
    sub = PivotSubgraphs((2, 1), 1).subgraphs(
        chain_graph(torch.tensor([-1, -1, -1, 1, 1, 1])), torch.tensor([0]))
    assert sub.y.tolist() == [0, 0]
    assert 'y' not in PivotSubgraphs((2, 1), 1).subgraphs(
        chain_graph(None), torch.tensor([0]))


def test_pivot_subgraphs_repr_and_errors():
    assert str(PivotSubgraphs()) == ('PivotSubgraphs(k_at_hop=(200, 10), '
                                     'active_connection=10)')
    with pytest.raises(ValueError, match="'k_at_hop'"):
        PivotSubgraphs(k_at_hop=(5, 0))
    with pytest.raises(ValueError, match="'active_connection'"):
        PivotSubgraphs(active_connection=0)
    with pytest.raises(ValueError, match='k=1'):
        PivotSubgraphs().subgraphs(
            Data(x=X, knn_neighbor=torch.arange(6).view(6, 1)),
            torch.tensor([0]))


def test_pivot_subgraphs_match_reference(reference_fixtures):
    root = reference_fixtures
    ips = np.load(root / 'algorithms' / 'lgcn_ips.npz')
    x = l2_normalize(read_features(root / 'graph' / 'features.bin', 256))
    knn = read_knn(root / 'graph' / 'knns' / 'faiss_k_20.npz')
    labels = np.loadtxt(root / 'graph' / 'labels.meta', dtype=np.int64)
    graph = Data(x=torch.from_numpy(x),
                 knn_neighbor=torch.from_numpy(knn.neighbor),
                 y=torch.from_numpy(labels))
    batch = PivotSubgraphs((20, 5), 5).subgraphs(
        graph, torch.from_numpy(ips['pivots']))
    for b in range(3):
        start, end = int(batch.ptr[b]), int(batch.ptr[b + 1])
        size = int(ips['num_nodes'][b])
        uniq = ips['uniq_nodes'][b, :size]
        n_id = batch.n_id[start:end].numpy()
        assert sorted(n_id) == sorted(uniq)
        # The reference's row of each of our nodes.
        perm = np.argsort(uniq)[np.searchsorted(np.sort(uniq), n_id)]
        np.testing.assert_array_equal(batch.x[start:end].numpy(),
                                      ips['feat'][b][perm])
        adjacency = np.zeros((size, size), dtype=np.float32)
        inside = (batch.edge_index[1] >= start) & (batch.edge_index[1] < end)
        source, target = batch.edge_index[:, inside].numpy() - start
        adjacency[target, source] = batch.edge_weight[inside].numpy()
        np.testing.assert_allclose(adjacency,
                                   ips['A'][b][np.ix_(perm, perm)], atol=1e-7)
        assert n_id[int(batch.pivot_index[b]) - start] == ips['pivots'][b]
        one_hop = batch.one_hop_index[19 * b:19 * (b + 1)].numpy() - start
        expected = dict(zip(uniq[ips['one_hop_idxs'][b]],
                            ips['edge_labels'][b], strict=True))
        assert sorted(n_id[one_hop]) == sorted(expected)
        assert batch.y[19 * b:19 * (b + 1)].tolist() == [
            expected[node] for node in n_id[one_hop]]
