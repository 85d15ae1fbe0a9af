import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from ltc_pyg.data.io import read_features, read_knn, read_labels
from ltc_pyg.graph.confidence import (
    ConfidenceTargets,
    average_confidence,
    center_confidence,
    density,
    neighbor_confidence,
)
from ltc_pyg.graph.knn import l2_normalize
from ltc_pyg.graph.transforms import knn_to_tensors

# Rows: self first. Pairs (0, 1) and (2, 3), cross links at 0.3.
NEIGHBOR = torch.tensor([[0, 1, 2], [1, 0, 3], [2, 3, 0], [3, 2, 1]])
SIMILARITY = torch.tensor([[1., .9, .3], [1., .9, .3], [1., .8, .3],
                           [1., .8, .3]])
LABELS = torch.tensor([0, 0, 1, 1])
# Unit vectors: identity 0 = nodes 0, 1, 2; nodes 3 and 4 are singletons.
X = torch.tensor([[1., 0.], [.6, .8], [0., 1.], [.8, .6], [-1., 0.]])
X_LABELS = torch.tensor([0, 0, 0, 1, 2])


def test_neighbor_confidence_hand_values():
    # raw = 1 + .9 - .3 = 1.6 and 1 + .8 - .3 = 1.5; scaled by max |raw|.
    s_nbr = neighbor_confidence(NEIGHBOR, SIMILARITY, LABELS)
    assert torch.allclose(s_nbr, torch.tensor([1., 1., .9375, .9375]))
    size_norm = neighbor_confidence(NEIGHBOR, SIMILARITY, LABELS, True)
    assert torch.allclose(size_norm, torch.tensor([1.6, 1.6, 1.5, 1.5]) / 3)
    assert s_nbr.dtype == torch.float32


def test_average_confidence_hand_values():
    # Similarities inside identity 0: (0,1) .6, (0,2) 0, (1,2) .8.
    assert torch.allclose(average_confidence(X, X_LABELS),
                          torch.tensor([.3, .7, .4, 0., 0.]))
    assert torch.allclose(average_confidence(X, X_LABELS, True),
                          torch.tensor([.3, .8, 0., 0., 0.]))


def test_center_confidence_hand_values():
    # Mean of identity 0 = (1.6, 1.8) / 3; singletons have similarity 1.
    assert torch.allclose(center_confidence(X, X_LABELS),
                          torch.tensor([1.6 / 3, .8, .6, 1., 1.]))


def test_density_hand_values():
    assert torch.allclose(density(SIMILARITY, 0.5),
                          torch.tensor([1.9, 1.9, 1.8, 1.8]))
    assert density(SIMILARITY, 0.5, weighted=False).tolist() == [2, 2, 2, 2]
    assert density(SIMILARITY, 0.05, weighted=False).tolist() == [1, 1, 1, 1]


def _graph(labels=LABELS):
    return Data(x=X[:4], knn_neighbor=NEIGHBOR, knn_similarity=SIMILARITY,
                y=labels)


@pytest.mark.parametrize('metric', ['s_nbr', 's_nbr_size_norm', 's_avg',
                                    's_center', 'density'])
def test_transform_sets_confidence_and_leaves_input(metric):
    data = _graph()
    out = ConfidenceTargets(metric)(data)
    assert out.confidence.shape == (4,)
    assert 'confidence' not in data


def test_transform_values_and_repr():
    out = ConfidenceTargets()(_graph())
    assert torch.allclose(out.confidence, torch.tensor([1., 1., .9375,
                                                        .9375]))
    assert str(ConfidenceTargets('density', radius=0.3)) == (
        'ConfidenceTargets(metric=density, radius=0.3)')


def test_transform_errors_name_the_problem():
    with pytest.raises(ValueError, match="Unknown confidence metric 'iou'"):
        ConfidenceTargets('iou')
    with pytest.raises(ValueError, match="needs labels 'y'"):
        ConfidenceTargets()(Data(x=X[:4], knn_neighbor=NEIGHBOR,
                                 knn_similarity=SIMILARITY))
    with pytest.raises(ValueError, match=r'1 of 4 are unknown'):
        ConfidenceTargets()(_graph(torch.tensor([0, -1, 1, 1])))
    # density needs no labels
    unlabeled = Data(x=X[:4], knn_neighbor=NEIGHBOR, knn_similarity=SIMILARITY)
    assert ConfidenceTargets('density')(unlabeled).confidence.shape == (4,)


def test_matches_reference_confidences(reference_fixtures):
    root = reference_fixtures
    x = torch.from_numpy(l2_normalize(read_features(
        root / 'graph' / 'features.bin', 256)))
    labels = torch.from_numpy(read_labels(root / 'graph' / 'labels.meta'))
    neighbor, similarity = knn_to_tensors(read_knn(
        root / 'graph' / 'knns' / 'faiss_k_80.npz'))
    expected = np.load(root / 'algorithms' / 'confidences.npz')
    assert (neighbor.numpy() == expected['ordered_nbrs']).all()
    computed = {
        's_nbr': neighbor_confidence(neighbor, similarity, labels),
        's_nbr_size_norm': neighbor_confidence(neighbor, similarity, labels,
                                               size_norm=True),
        's_avg': average_confidence(x, labels, larger_ids_only=True),
        's_center': center_confidence(x, labels),
    }
    for name, value in computed.items():
        np.testing.assert_allclose(value.numpy(), expected[name], rtol=0,
                                   atol=1e-6, err_msg=name)
    for radius in ('0.3', '0.5'):
        np.testing.assert_allclose(density(similarity, float(radius)).numpy(),
                                   expected[f'density_r{radius}_w'],
                                   rtol=1e-6)
    np.testing.assert_array_equal(
        density(similarity, 0.5, weighted=False).numpy(),
        expected['density_r0.5_cnt'])
