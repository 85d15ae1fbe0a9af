import numpy as np
import torch

from ltc_pyg.baselines.knn_graph import knn_matrix

# Row i: itself, then two neighbours; 0 sees 2 at an explicit 0.0.
NEIGHBOR = torch.tensor([[0, 1, 2], [1, 2, 0], [2, 0, 1]])
SIMILARITY = torch.tensor([[1., .5, 0.], [1., .75, .25], [1., -.5, .5]])


def test_entries_are_the_knn_rows_without_self_loops():
    matrix = knn_matrix(NEIGHBOR, SIMILARITY)
    assert matrix.shape == (3, 3) and matrix.dtype == np.float64
    assert matrix.has_sorted_indices
    assert matrix.toarray().tolist() == [[0., .5, 0.], [.25, 0., .75],
                                         [-.5, .5, 0.]]
    # The zero similarity stays a stored entry.
    assert matrix.nnz == 6
    assert matrix[0].indices.tolist() == [1, 2]
    assert matrix[0].data.tolist() == [.5, 0.]


def test_symmetric_takes_the_larger_direction():
    matrix = knn_matrix(NEIGHBOR, SIMILARITY, symmetric=True)
    assert matrix.toarray().tolist() == [[0., .5, 0.], [.5, 0., .75],
                                         [0., .75, 0.]]
    assert matrix.nnz == 6  # max(0.0, -0.5) = 0.0 is kept
    assert (matrix != matrix.T).nnz == 0


def test_min_similarity_drops_entries():
    matrix = knn_matrix(NEIGHBOR, SIMILARITY, min_similarity=0.25)
    assert matrix.toarray().tolist() == [[0., .5, 0.], [.25, 0., .75],
                                         [0., .5, 0.]]
    assert matrix.nnz == 4


def test_self_loops_are_removed_by_id_and_duplicates_merged():
    # Row 0 holds 1 twice; row 1 holds itself off column 0 and 0 twice.
    neighbor = torch.tensor([[0, 1, 1], [0, 1, 0], [2, 2, 2]])
    similarity = torch.tensor([[1., .5, .375], [.25, 1., .375], [1., 1., 1.]])
    matrix = knn_matrix(neighbor, similarity)
    assert matrix.toarray().tolist() == [[0., .5, 0.], [.375, 0., 0.],
                                         [0., 0., 0.]]
    assert matrix.nnz == 2
