import math

import pytest
import torch
from torch_geometric.data import Data

from ltc_pyg.graph.edge_probability import (
    EarlyStop,
    NeighborEdgeProbability,
    default_temperature,
    early_stop,
    kept_links,
    knn_edge_features,
    mean_knn_distance,
    neighbor_edge_probability,
    neighbor_probability,
    shared_neighbors,
)

# Five nodes, k = 3 (itself first). Row 0 puts 1/2 on itself and 1/4 on
# each neighbour at T = 1; every other row is uniform (1/3 each).
NEIGHBOR = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 1, 3], [3, 4, 2],
                         [4, 3, 1]])
SIMILARITY = torch.tensor([[1.0, 1 - math.log(2), 1 - math.log(2)]]
                          + [[1.0, 1.0, 1.0]] * 4)
# NEP(i, j) = 1/2 sum over shared m of (P_im + P_jm), worked by hand:
# NEP(0, 2): rows {0,1,2} and {2,1,3} share {1, 2}:
#   (1/4 + 1/4 + 1/3 + 1/3) / 2 = 7/12.
NEP = torch.tensor([[1, 1, 7 / 12], [1, 1, 2 / 3], [1, 2 / 3, 2 / 3],
                    [1, 2 / 3, 2 / 3], [1, 2 / 3, 1 / 3]])
SHARED = torch.tensor([[3, 3, 2], [3, 3, 2], [3, 2, 2], [3, 2, 2],
                       [3, 2, 1]])
# Column of i in j's row, k = 3 when i is not there.
RECIPROCAL = torch.tensor([[0, 1, 3], [0, 1, 1], [0, 2, 2], [0, 1, 2],
                           [0, 1, 3]])


def test_row_distribution_is_a_softmax_of_negative_distances():
    probability = neighbor_probability(SIMILARITY, temperature=1.0)
    assert torch.allclose(probability[0], torch.tensor([.5, .25, .25]))
    assert torch.allclose(probability[1:], torch.full((4, 3), 1 / 3))
    with pytest.raises(ValueError, match='temperature must be positive'):
        neighbor_probability(SIMILARITY, temperature=0.0)


@pytest.mark.parametrize('chunk_size', [None, 1, 2])
def test_shared_neighbors_match_the_hand_computation(chunk_size):
    shared = shared_neighbors(NEIGHBOR, neighbor_probability(SIMILARITY, 1.0),
                              chunk_size=chunk_size)
    assert torch.allclose(shared.probability, NEP)
    assert torch.equal(shared.count, SHARED)
    assert torch.equal(shared.reciprocal_rank, RECIPROCAL)
    alone = shared_neighbors(NEIGHBOR, neighbor_probability(SIMILARITY, 1.0),
                             chunk_size=chunk_size, counts=False)
    assert torch.equal(alone.probability, shared.probability)
    assert alone.count is None and alone.reciprocal_rank is None


def test_nep_reads_its_temperature_from_the_data():
    # mean distance to the other neighbours: row 0 has ln 2, the rest 0.
    assert mean_knn_distance(SIMILARITY) == pytest.approx(math.log(2) / 5)
    assert default_temperature(SIMILARITY) == pytest.approx(
        0.75 * math.log(2) / 5)
    explicit = neighbor_edge_probability(NEIGHBOR, SIMILARITY, 1.0)
    assert torch.allclose(explicit, NEP)
    derived = neighbor_edge_probability(NEIGHBOR, SIMILARITY)
    assert torch.allclose(derived, neighbor_edge_probability(
        NEIGHBOR, SIMILARITY, 0.75 * math.log(2) / 5))


def test_early_stop_keeps_each_row_up_to_its_first_failure():
    score = torch.tensor([[1.0, 0.5, 0.1, 0.6], [1.0, 0.1, 0.9, 0.9],
                          [0.0, 0.4, 0.3, 0.3]])
    keep = early_stop(score, threshold=0.3)
    assert keep.tolist() == [[False, True, False, False],
                             [False, False, False, False],
                             [False, True, True, True]]
    neighbor = torch.tensor([[0, 5, 6, 7], [1, 4, 5, 6], [2, 7, 8, 9]])
    assert kept_links(neighbor, keep).tolist() == [[0, 2, 2, 2],
                                                   [5, 7, 8, 9]]


def test_edge_features_stack_the_named_columns():
    features = knn_edge_features(NEIGHBOR, SIMILARITY, 1.0)
    assert features.shape == (5, 3, 5)
    assert torch.allclose(features[..., 0], SIMILARITY)
    assert torch.allclose(features[..., 1], NEP)
    assert torch.allclose(features[..., 2], SHARED / 3)
    assert torch.allclose(features[..., 3], torch.tensor([0, 1, 2]) / 3)
    assert torch.allclose(features[..., 4], RECIPROCAL / 3)
    only = knn_edge_features(NEIGHBOR, SIMILARITY, 1.0, ('rank',))
    assert torch.equal(only, features[..., 3:4])
    with pytest.raises(ValueError, match=r"Unknown edge features \['cos'\]"):
        knn_edge_features(NEIGHBOR, SIMILARITY, 1.0, ('similarity', 'cos'))


def test_transforms_add_nep_and_early_stopped_edges():
    data = Data(knn_neighbor=NEIGHBOR, knn_similarity=SIMILARITY,
                num_nodes=5)
    transform = NeighborEdgeProbability(temperature=1.0)
    assert repr(transform) == 'NeighborEdgeProbability(temperature=1.0)'
    data = transform(data)
    assert torch.allclose(data.knn_nep, NEP)
    stop = EarlyStop(threshold=0.6)
    assert repr(stop) == "EarlyStop(threshold=0.6, score='knn_nep')"
    data = stop(data)
    # Rows keep: 0 -> 1 (then 7/12 stops), 1 -> 0, 2; 2 -> 1, 3; 3 -> 4, 2;
    # 4 -> 3 (then 1/3 stops); PyG edges point from neighbour to node.
    assert data.edge_index.tolist() == [[1, 0, 2, 1, 3, 4, 2, 3],
                                        [0, 1, 1, 2, 2, 3, 3, 4]]
    assert torch.allclose(data.edge_weight, torch.tensor(
        [1, 1, 2 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3]))
    with pytest.raises(ValueError, match='temperature must be positive'):
        NeighborEdgeProbability(temperature=-1.0)
