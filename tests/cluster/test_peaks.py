import numpy as np
import pytest
import torch

from ltc_pyg.cluster.peaks import (
    confidence_to_peaks,
    peaks_to_edges,
    peaks_to_labels,
)
from ltc_pyg.data.io import read_knn
from ltc_pyg.graph.components import relabel_by_first_appearance
from ltc_pyg.graph.transforms import knn_to_tensors

NEIGHBOR = torch.tensor([[0, 1, 2], [1, 0, 3], [2, 3, 0], [3, 2, 1]])
SIMILARITY = torch.tensor([[1., .9, .3], [1., .9, .3], [1., .8, .3],
                           [1., .8, .3]])
CONFIDENCE = torch.tensor([.1, .5, .2, .9])


def test_peaks_are_strictly_more_confident_in_row_order():
    peaks = confidence_to_peaks(NEIGHBOR, SIMILARITY, CONFIDENCE)
    assert peaks.index.tolist() == [[1], [3], [3], [-1]]
    assert torch.allclose(peaks.similarity[:3, 0], torch.tensor([.9, .3, .8]))
    assert torch.isnan(peaks.similarity[3, 0])
    two = confidence_to_peaks(NEIGHBOR, SIMILARITY, CONFIDENCE, max_conn=2)
    assert two.index.tolist() == [[1, 2], [3, -1], [3, -1], [-1, -1]]
    # Equal confidence is not higher.
    tied = confidence_to_peaks(NEIGHBOR, SIMILARITY, torch.full((4,), .5))
    assert tied.index.view(-1).tolist() == [-1, -1, -1, -1]


def test_threshold_is_strict():
    peaks = confidence_to_peaks(NEIGHBOR, SIMILARITY, CONFIDENCE)
    assert peaks_to_edges(peaks, 0.5).tolist() == [[0, 2], [1, 3]]
    assert peaks_to_labels(peaks, 0.5).tolist() == [0, 0, 1, 1]
    assert peaks_to_labels(peaks, 0.2).tolist() == [0, 0, 0, 0]
    assert peaks_to_labels(peaks, 0.8).tolist() == [0, 0, 1, 2]


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"'max_conn' must be at least 1 "
                       r'\(got 0\)'):
        confidence_to_peaks(NEIGHBOR, SIMILARITY, CONFIDENCE, 0)
    with pytest.raises(ValueError, match='Got 3 confidences for 4 nodes'):
        confidence_to_peaks(NEIGHBOR, SIMILARITY, CONFIDENCE[:3])


def test_matches_reference_peaks_and_labels(reference_fixtures):
    root = reference_fixtures
    neighbor, similarity = knn_to_tensors(read_knn(
        root / 'graph' / 'knns' / 'faiss_k_80.npz'))
    confidence = torch.from_numpy(np.load(
        root / 'algorithms' / 'confidences.npz')['s_nbr'])
    expected = np.load(root / 'algorithms' / 'peaks_labels.npz')
    runs = {1: (0.5, 0.65, 0.8), 3: (0.65,)}
    for max_conn, taus in runs.items():
        peaks = confidence_to_peaks(neighbor, similarity, confidence,
                                    max_conn)
        np.testing.assert_array_equal(peaks.index.numpy(),
                                      expected[f'peaks_maxconn{max_conn}'])
        np.testing.assert_allclose(1 - peaks.similarity.numpy(),
                                   expected[f'dist2peak_maxconn{max_conn}'],
                                   atol=1e-6)
        for tau in taus:
            run = f'maxconn{max_conn}_tau{tau}'
            np.testing.assert_array_equal(peaks_to_edges(peaks, tau).T,
                                          expected[f'edges_{run}'])
            # The reference numbers clusters by root rank: compare partitions.
            np.testing.assert_array_equal(
                peaks_to_labels(peaks, tau),
                relabel_by_first_appearance(expected[f'labels_{run}']))
