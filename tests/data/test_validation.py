import numpy as np
import pytest
import torch

from ltc_pyg.data.validation import (
    check_features,
    check_k,
    check_knn,
    check_labels,
)


@pytest.mark.parametrize('x, match', [
    (torch.ones(4), r'\[num_nodes, num_features\] \(got \(4,\)\)'),
    (np.ones((0, 3), np.float32), 'empty'),
    (torch.full((4, 2), torch.inf), r'NaN/Inf in 4 of 4 rows'),
])
def test_check_features_rejects(x, match):
    with pytest.raises(ValueError, match=match):
        check_features(x)


def test_check_features_dim_and_zero_rows():
    x = torch.eye(3)
    check_features(x, num_features=3)
    with pytest.raises(ValueError, match='Expected 4 features per node'):
        check_features(x, num_features=4)
    x[1] = 0
    with pytest.raises(ValueError, match='zero-norm'):
        check_features(x)
    check_features(x, allow_zero_rows=True)


def test_check_labels():
    check_labels(np.array([0, -1, 2]), num_nodes=3)
    with pytest.raises(TypeError, match='integer labels'):
        check_labels(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match='Got 2 labels for 3 nodes'):
        check_labels(torch.tensor([0, 1]), num_nodes=3)


def test_check_knn_ids_out_of_range():
    with pytest.raises(ValueError, match=r'ids in \[0, 5\], outside '
                       r'\[0, 1\]'):
        check_knn(np.array([[0, 5], [1, 0]]), np.ones((2, 2)))


def test_check_k():
    check_k(3, 3)
    with pytest.raises(ValueError, match='only 3 nodes'):
        check_k(4, 3)
    with pytest.raises(ValueError, match='at least 1'):
        check_k(0, 3)
