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


def test_real_faces_need_their_own_scale(lfw_root):
    # dlib descriptors: the ArcFace-style 0.6 merges nearly everything,
    # while ~0.96 separates identities (see ../shared/data/README.md).
    from ltc_pyg.config import KNNConfig
    from ltc_pyg.data.io import read_features, read_labels
    from ltc_pyg.metrics import evaluate
    from ltc_pyg.pipelines.run import build_graph
    x = read_features(lfw_root / 'features' / 'lfw_all.bin', 128)
    y = read_labels(lfw_root / 'labels' / 'lfw_all.meta', x.shape[0])
    graph = build_graph(x, KNNConfig(k=10))
    arcface_scale = KNNThreshold({'threshold': 0.6}).predict(graph)
    dlib_scale = KNNThreshold({'threshold': 0.96}).predict(graph)
    automatic = KNNThreshold().predict(graph)
    assert evaluate(y, arcface_scale)['pairwise_fscore'] < 0.05
    assert evaluate(y, dlib_scale)['pairwise_fscore'] > 0.9
    assert evaluate(y, automatic)['pairwise_fscore'] > 0.5
