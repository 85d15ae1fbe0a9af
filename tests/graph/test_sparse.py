import numpy as np
import pytest
import torch
import torch_geometric.transforms as T
from torch_geometric.data import Data

from ltc_pyg.graph.knn import knn_search
from ltc_pyg.graph.sparse import (
    csr_arrays,
    csr_entry_positions,
    gcn_adjacency,
)
from ltc_pyg.graph.transforms import (
    KNNAffinityGraph,
    RowNormalize,
    ToSparseAdjacency,
)


def _edge_list_adjacency(x, neighbor, similarity, min_similarity):
    transform = T.Compose([
        KNNAffinityGraph(neighbor.size(1), min_similarity=min_similarity,
                         symmetric=True, self_loops=True),
        RowNormalize(), ToSparseAdjacency('csr')])
    return transform(Data(x=x, knn_neighbor=neighbor,
                          knn_similarity=similarity,
                          num_nodes=x.size(0))).adj_t


@pytest.mark.parametrize('min_similarity', [0.0, 0.5, -1.0, None])
def test_gcn_adjacency_equals_the_edge_list_path_bit_for_bit(min_similarity):
    x = np.random.default_rng(0).standard_normal((400, 6)).astype(np.float32)
    knn = knn_search(x, 12)
    x = torch.from_numpy(x)
    neighbor = torch.from_numpy(knn.neighbor)
    similarity = torch.from_numpy(knn.similarity)
    built = csr_arrays(gcn_adjacency(x, neighbor, similarity, min_similarity))
    expected = csr_arrays(_edge_list_adjacency(x, neighbor, similarity,
                                               min_similarity))
    for ours, theirs in zip(built, expected, strict=True):
        assert torch.equal(ours, theirs)
    # The scipy path (non-negative weights) keeps int32 indices.
    index_dtype = torch.int32 if min_similarity in (0.0, 0.5) else torch.long
    assert built[0].dtype == built[1].dtype == index_dtype


def test_gcn_adjacency_of_a_hand_made_graph():
    # 0 <-> 1 at 0.8 (both rows), 2 -> 0 at 0.4 (row 2 only), 1 twice in
    # row 0 at 0.8 and 0.2: the maximum counts.
    neighbor = torch.tensor([[0, 1, 1], [1, 0, 2], [2, 0, 1]])
    similarity = torch.tensor([[1.0, 0.8, 0.2], [1.0, 0.8, 0.1],
                               [1.0, 0.4, 0.1]])
    x = torch.eye(3)
    adjacency = gcn_adjacency(x, neighbor, similarity, 0.0).to_dense()
    raw = torch.tensor([[1.0, 0.8, 0.4], [0.8, 1.0, 0.1], [0.4, 0.1, 1.0]])
    assert torch.allclose(adjacency, raw / raw.sum(dim=1, keepdim=True))
    assert torch.equal(adjacency, _edge_list_adjacency(
        x, neighbor, similarity, 0.0).to_dense())


def test_csr_entry_positions_equal_a_dense_lookup():
    rng = np.random.default_rng(0)
    dense = torch.from_numpy(rng.random((30, 40)) < 0.2)
    dense[7] = False  # an empty row
    dense[3] = True   # a full one
    adjacency = dense.float().to_sparse_csr()
    rowptr, col, _ = csr_arrays(adjacency)
    for index in (torch.int32, torch.long):
        row = torch.from_numpy(rng.integers(0, 30, 500))
        column = torch.from_numpy(rng.integers(0, 40, 500))
        position = csr_entry_positions(rowptr.to(index), col.to(index), row,
                                       column, chunk_size=64)
        present = dense[row, column]
        assert torch.equal(position >= 0, present)
        assert torch.equal(col[position[present]], column[present])
        assert bool((rowptr[row[present]] <= position[present]).all())
        assert bool((position[present] < rowptr[row[present] + 1]).all())
    assert csr_entry_positions(rowptr, col, torch.tensor([7]),
                               torch.tensor([0])).tolist() == [-1]
    empty = torch.zeros(4, dtype=torch.long)  # a 3-row matrix, no entries
    assert csr_entry_positions(empty, empty[:0], torch.tensor([0, 2]),
                               torch.tensor([1, 1])).tolist() == [-1, -1]
