import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from ltc_pyg.pipelines.knn_threshold import KNNThreshold

# Rows: self first. Pairs (0,1) and (2,3) at 0.9, cross links at 0.3.
NEIGHBOR = torch.tensor([[0, 1, 2], [1, 0, 3], [2, 3, 0], [3, 2, 1]])
SIMILARITY = torch.tensor([[1., .9, .3], [1., .9, .3], [1., .9, .3],
                           [1., .9, .3]])
GRAPH = Data(x=torch.zeros(4, 2), knn_neighbor=NEIGHBOR,
             knn_similarity=SIMILARITY, num_nodes=4)


def test_fixed_threshold():
    assert KNNThreshold({'threshold': 0.5}).predict(GRAPH).tolist() == [
        0, 0, 1, 1]
    assert KNNThreshold({'threshold': 0.2}).predict(GRAPH).tolist() == [
        0, 0, 0, 0]


def test_automatic_threshold_separates_the_modes():
    method = KNNThreshold()
    assert method.predict(GRAPH).tolist() == [0, 0, 1, 1]
    assert 0.3 < method.threshold_ <= 0.9
    assert method.describe()['threshold_used'] == method.threshold_


def test_threshold_range_is_checked():
    with pytest.raises(ValueError, match=r'in \[-1, 1\] \(got 1.5\)'):
        KNNThreshold({'threshold': 1.5})
