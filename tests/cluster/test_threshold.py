import numpy as np
import pytest
import torch

from ltc_pyg.cluster.merge import threshold_links
from ltc_pyg.cluster.threshold import (
    BIMODAL,
    bimodality,
    graph_threshold,
    otsu_threshold,
)
from ltc_pyg.config import KNNConfig
from ltc_pyg.data.synthetic import make_splits
from ltc_pyg.graph.components import connected_components
from ltc_pyg.graph.transforms import knn_to_edges
from ltc_pyg.pipelines.run import build_graph


@pytest.mark.parametrize('low, high', [(0.0, 0.6), (0.8, 0.95)])
def test_otsu_splits_two_modes_on_any_scale(low, high):
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(low, 0.01, 5000),
                             rng.normal(high, 0.01, 2000)])
    threshold = otsu_threshold(values)
    assert low + 0.03 < threshold < high - 0.03


def test_otsu_degenerate_inputs():
    assert otsu_threshold(np.full(10, 0.5)) == 0.5
    with pytest.raises(ValueError, match='no similarities'):
        otsu_threshold(np.array([np.nan]))


def test_bimodality_coefficient():
    rng = np.random.default_rng(0)
    assert bimodality(rng.normal(0, 1, 20000)) == pytest.approx(1 / 3,
                                                                abs=0.01)
    # A uniform sample sits at the cut-off, two separated modes above it.
    assert bimodality(rng.uniform(0, 1, 20000)) == pytest.approx(BIMODAL,
                                                                 abs=0.01)
    assert bimodality(np.r_[np.zeros(500), np.ones(500)]) == 1.0
    assert bimodality(np.full(4, 0.3)) == 0.0


@pytest.fixture(scope='module')
def unimodal():
    # Every sample has a close same-identity neighbour: one mode.
    split = make_splits(num_train_identities=1, num_test_identities=30,
                        dim=32, mean_size=20, seed=0)['test']
    return build_graph(split.x, KNNConfig(k=10))


def largest(graph, threshold):
    edge_index, edge_weight = knn_to_edges(graph.knn_neighbor,
                                           graph.knn_similarity)
    return np.bincount(threshold_links(edge_index, edge_weight,
                                       graph.num_nodes, threshold)).max()


def lfw_like_knn():
    # Three people with 4 photos each (0-3, 4-7, 8-11; 0.95 among them),
    # one stranger link 0 - 4 at 0.7, and eight single-photo people
    # (12-19) whose nearest other face is at 0.3: the nearest-neighbour
    # similarities are bimodal.
    rows, similarities = [], []
    for i in range(12):
        person = [j for j in range(i // 4 * 4, i // 4 * 4 + 4) if j != i]
        stranger = {0: 4, 4: 0}.get(i, 12 + i % 8)
        rows.append([i, *person, stranger])
        similarities.append([1.0, .95, .95, .95, .7 if i in (0, 4) else .2])
    for i in range(12, 20):
        rows.append([i] + [12 + (i - 12 + d) % 8 for d in (1, 2, 3, 4)])
        similarities.append([1.0, .3, .25, .2, .15])
    return torch.tensor(rows), torch.tensor(similarities)


def test_graph_threshold_bimodal():
    neighbor, similarity = lfw_like_knn()
    start = otsu_threshold(similarity[:, 1].numpy())
    assert bimodality(similarity[:, 1].numpy()) > BIMODAL
    assert 0.3 < start < 0.7  # it would join 0 and 4
    # Infomap splits communities itself: Otsu's threshold.
    assert graph_threshold(neighbor, similarity, 'flow') == start
    # Components: the lowest of the thresholds whose components describe
    # the walk shortest, the one that cuts the stranger link.
    chosen = graph_threshold(neighbor, similarity)
    assert 0.7 < chosen < 0.71
    edge_index, _ = knn_to_edges(neighbor, similarity, chosen)
    labels = connected_components(edge_index, 20)
    assert labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4 + list(range(3, 11))
    # Under 2% of the nodes with a close neighbour (one pair in 200): the
    # 98% quantile lies below Otsu's threshold, where the components are
    # those of the described links themselves (no flow leaves them), and
    # no lower threshold, which only merges them, describes the walk
    # shorter.
    rows = [[0, 1], [1, 0]] + [[i, 2 + (i - 1) % 198] for i in range(2, 200)]
    nearest = [.95, .95] + [.3 + .001 * (i % 7) for i in range(2, 200)]
    few = torch.tensor([[1.0, value] for value in nearest])
    assert bimodality(few[:, 1].numpy()) > BIMODAL
    assert graph_threshold(torch.tensor(rows), few) == otsu_threshold(
        few[:, 1].numpy())
    with pytest.raises(ValueError, match=r'k >= 2, got k=1'):
        graph_threshold(neighbor[:, :1], similarity[:, :1])
    with pytest.raises(ValueError, match="Unknown rule 'x'"):
        graph_threshold(neighbor, similarity, 'x')


def test_graph_threshold_components_stops_before_chaining(unimodal):
    nearest = unimodal.knn_similarity[:, 1].numpy()
    assert bimodality(nearest) < BIMODAL
    start = otsu_threshold(nearest)
    chosen = graph_threshold(unimodal.knn_neighbor, unimodal.knn_similarity)
    assert chosen < start
    limit = 1.25 * largest(unimodal, start)
    assert largest(unimodal, chosen) <= limit < largest(unimodal,
                                                        chosen - 1e-3)


@pytest.mark.parametrize('fraction', [0.5, 0.95])
def test_graph_threshold_flow_is_where_most_nodes_connect(unimodal,
                                                          fraction):
    keyword = {} if fraction == 0.95 else {'fraction': fraction}
    chosen = graph_threshold(unimodal.knn_neighbor, unimodal.knn_similarity,
                             'flow', **keyword)
    size = fraction * unimodal.num_nodes
    assert largest(unimodal, chosen + 1e-3) < size <= largest(
        unimodal, chosen - 1e-3)
