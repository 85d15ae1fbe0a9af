import math

import pytest
import torch

from ltc_pyg.baselines.rank_order import approx_rank_order, rank_order_distance
from ltc_pyg.graph.knn import knn_search

# Two triangles; node 2's list holds 3 instead of 1 (k=3, itself first).
NEIGHBOR = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 0, 3], [3, 4, 2],
                         [4, 3, 5], [5, 4, 3]])


def brute_force_rank_order(neighbor):
    r"""The docstring's formula, written out with Python lists."""
    lists = neighbor.tolist()
    k = len(lists[0])

    def order(a, b):  # O_a(b), k when absent
        return lists[a].index(b) if b in lists[a] else k

    def d(a, b):
        return sum(lists[a][i] not in lists[b]
                   for i in range(min(order(a, b), k - 1) + 1))

    return torch.tensor([[math.inf if a == b else
                          (d(a, b) + d(b, a)) / min(order(a, b),
                                                    order(b, a))
                          for b in row] for a, row in enumerate(lists)])


def random_knn_lists(num_nodes, k, seed):
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for node in range(num_nodes):
        others = torch.tensor([j for j in range(num_nodes) if j != node])
        picked = others[torch.randperm(num_nodes - 1,
                                       generator=generator)[:k - 1]]
        rows.append(torch.cat([torch.tensor([node]), picked]))
    return torch.stack(rows)


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('batch_size', [1, 5, 512])
def test_rank_order_distance_matches_the_formula(seed, batch_size):
    neighbor = random_knn_lists(12, 5, seed)
    distance = rank_order_distance(neighbor, batch_size=batch_size)
    assert distance.dtype == torch.float32
    torch.testing.assert_close(distance, brute_force_rank_order(neighbor),
                               rtol=0, atol=0)


def test_rank_order_distance_on_searched_lists():
    x = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
    neighbor = torch.from_numpy(knn_search(x.numpy(), 6).neighbor)
    torch.testing.assert_close(rank_order_distance(neighbor, batch_size=3),
                               brute_force_rank_order(neighbor), rtol=0,
                               atol=0)


def test_rank_order_distance_by_hand():
    # D(0, 1): both lists are {0, 1, 2}, so d = 0 both ways.
    # D(2, 0) = (d(2, 0) + d(0, 2)) / min(1, 2) = (0 + 1) / 1: 0's list
    # holds 1, which 2's list lacks. D(2, 3): each sits at 2 in the other's
    # list; d(2, 3) = I(2) + I(0) + I(3) = 1 and d(3, 2) = I(3) + I(4) +
    # I(2) = 1, so D = 2 / 2.
    inf = math.inf
    assert rank_order_distance(NEIGHBOR).tolist() == [
        [inf, 0., 1.], [inf, 0., 1.], [inf, 1., 1.], [inf, 0., 1.],
        [inf, 0., 0.], [inf, 0., 1.]]


def test_approx_rank_order_links_at_the_threshold():
    # At 0, node 2 has no link (its D are both 1); 0-1 and 3-4-5 link.
    assert approx_rank_order(NEIGHBOR, 0.0).tolist() == [0, 0, 1, 2, 2, 2]
    assert approx_rank_order(NEIGHBOR, 0.5).tolist() == [0, 0, 1, 2, 2, 2]
    assert approx_rank_order(NEIGHBOR, 1.0).tolist() == [0] * 6


def test_rank_order_rejects_bad_input():
    with pytest.raises(ValueError, match=r'non-negative \(got -0.5\)'):
        approx_rank_order(NEIGHBOR, -0.5)
    with pytest.raises(ValueError, match=r'k <= 32768 \(got 32769\)'):
        rank_order_distance(torch.zeros(1, 2**15 + 1, dtype=torch.long))
