import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch, Data

from ltc_pyg.graph.confidence import ConfidenceTargets
from ltc_pyg.graph.transforms import AffinityData, KNNAffinityGraph
from ltc_pyg.proposals.pivot import PivotSubgraphs


def graph(seed: int, num_nodes: int) -> AffinityData:
    r"""Random unit features of 3 identities with their exact k=4 kNN."""
    gen = torch.Generator().manual_seed(seed)
    x = F.normalize(torch.randn(num_nodes, 8, generator=gen))
    y = torch.arange(num_nodes) % 3
    return KNNAffinityGraph(k=4)(Data(x=x, y=y))


G0, G1 = graph(0, 7), graph(1, 5)


def test_knn_affinity_graph_returns_affinity_data():
    assert isinstance(G0, AffinityData)
    assert G0.knn_neighbor.shape == (7, 4)
    # A feature tensor that requires grad (e.g. a model's output) works.
    x = G0.x.clone().requires_grad_()
    out = KNNAffinityGraph(k=4)(Data(x=x))
    assert torch.equal(out.knn_neighbor, G0.knn_neighbor)


def test_batch_shifts_knn_neighbor_and_indexing_shifts_back():
    batch = Batch.from_data_list([G0, G1])
    assert torch.equal(batch.knn_neighbor,
                       torch.cat([G0.knn_neighbor, G1.knn_neighbor + 7]))
    assert torch.equal(batch[1].knn_neighbor, G1.knn_neighbor)
    assert torch.equal(batch.index_select([1])[0].knn_neighbor,
                       G1.knn_neighbor)


@pytest.mark.parametrize('metric', ['s_nbr', 's_nbr_size_norm', 's_avg',
                                    's_center', 'density'])
def test_confidence_targets_on_batch_equal_parts(metric):
    transform = ConfidenceTargets(metric)
    batch = transform(Batch.from_data_list([G0, G1]))
    parts = torch.cat([transform(G0.clone()).confidence,
                       transform(G1.clone()).confidence])
    assert torch.allclose(batch.confidence, parts)
    # Not trivially equal: the targets vary across nodes.
    assert parts.unique().numel() > 1


def test_knn_affinity_graph_on_batch_equals_parts():
    batch = KNNAffinityGraph(k=3, symmetric=True)(
        Batch.from_data_list([G0, G1]))
    one = KNNAffinityGraph(k=3, symmetric=True)(G0.clone())
    two = KNNAffinityGraph(k=3, symmetric=True)(G1.clone())
    assert torch.equal(batch.edge_index,
                       torch.cat([one.edge_index, two.edge_index + 7], 1))
    assert torch.equal(batch.edge_weight,
                       torch.cat([one.edge_weight, two.edge_weight]))


def test_pivot_subgraphs_on_batch_equal_parts():
    transform = PivotSubgraphs(k_at_hop=(3, 2), active_connection=2)
    batch = transform(Batch.from_data_list([G0, G1]))
    parts = [transform(G0), transform(G1)]
    assert torch.equal(batch.n_id, torch.cat([parts[0].n_id,
                                              parts[1].n_id + 7]))
    assert torch.equal(batch.y, torch.cat([p.y for p in parts]))
    assert torch.equal(batch.edge_index[:, :parts[0].edge_index.size(1)],
                       parts[0].edge_index)


def test_subgraph_relabels_closed_sets_and_drops_open_ones():
    # Node ids 0..3 of a block-diagonal batch: the first graph's rows only
    # name its own nodes, so G0 is a closed subset.
    batch = Batch.from_data_list([G0, G1])
    mask = torch.arange(12) >= 7
    sub = batch.subgraph(mask)
    assert torch.equal(sub.knn_neighbor, G1.knn_neighbor)
    assert torch.equal(sub.knn_similarity, G1.knn_similarity)
    with pytest.warns(UserWarning, match=r'kNN rows name nodes outside'):
        open_set = G0.subgraph(torch.tensor([0, 1, 2]))
    assert 'knn_neighbor' not in open_set and 'knn_similarity' not in open_set
    assert open_set.num_nodes == 3
