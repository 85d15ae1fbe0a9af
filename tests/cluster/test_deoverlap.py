import numpy as np
import pytest

from ltc_pyg.cluster.deoverlap import deoverlap, nms
from ltc_pyg.proposals.super_vertex import Proposals

PROPOSALS = Proposals(np.array([0, 1, 2, 1, 2, 3, 4, 5]),
                      np.array([0, 3, 6, 8]))


def test_best_proposal_wins_and_uncovered_are_singletons():
    labels = deoverlap(np.array([0.2, 0.9, 0.5]), PROPOSALS, 7)
    # Ranked 1, 2, 0: {1,2,3} first, then {4,5}, then node 0 from {0,1,2}.
    assert labels.tolist() == [0, 1, 1, 1, 2, 2, 3]


def test_ties_keep_list_order_and_th_pos():
    labels = deoverlap(np.array([0.5, 0.5, 0.5]), PROPOSALS, 6)
    assert labels.tolist() == [0, 0, 0, 1, 2, 2]
    labels = deoverlap(np.array([0.2, 0.9, 0.5]), PROPOSALS, 6, th_pos=0.6)
    # Only {1,2,3} is kept; uncovered nodes are numbered after it by id.
    assert labels.tolist() == [1, 0, 0, 0, 2, 3]


def test_outliers_dropped_or_kept():
    # Node 1 is an outlier of proposal 1.
    outlier = np.array([.9, .9, .9, .1, .9, .9, .9, .9])
    scores = np.array([0.2, 0.9, 0.5])
    dropped = deoverlap(scores, PROPOSALS, 6, outlier_scores=outlier)
    # Proposal 1 loses node 1, which then goes to proposal 0.
    assert dropped.tolist() == [0, 0, 1, 1, 2, 2]
    kept = deoverlap(scores, PROPOSALS, 6, outlier_scores=outlier,
                     keep_outlier=True)
    # The outlier group {1} ranks after all clean clusters: node 1 still
    # goes to proposal 0 (a clean cluster).
    assert kept.tolist() == [0, 0, 1, 1, 2, 2]
    alone = Proposals(np.array([0, 1]), np.array([0, 2]))
    kept = deoverlap(np.array([1.0]), alone, 3,
                     outlier_scores=np.array([.9, .2]), keep_outlier=True)
    assert kept.tolist() == [0, 1, 2]


def test_nms():
    proposals = Proposals(np.array([0, 1, 2, 0, 1, 3, 4]),
                          np.array([0, 3, 5, 7]))
    # IoU({0,1,2}, {0,1}) = 2/3.
    assert nms(proposals.nodes, proposals.offsets, 0.5).tolist() == [
        True, False, True]
    assert nms(proposals.nodes, proposals.offsets, 0.7).tolist() == [
        True, True, True]
    labels = deoverlap(np.array([0.9, 0.8, 0.1]), proposals, 5, th_iou=0.5)
    assert labels.tolist() == [0, 0, 0, 1, 1]


def test_errors():
    with pytest.raises(ValueError, match='Expected 3 scores'):
        deoverlap(np.zeros(2), PROPOSALS, 6)
    with pytest.raises(ValueError, match=r'outside \[0, 4\]'):
        deoverlap(np.zeros(3), PROPOSALS, 5)
    with pytest.raises(ValueError, match='Expected 8 outlier'):
        deoverlap(np.zeros(3), PROPOSALS, 6, outlier_scores=np.zeros(3))


def test_matches_reference(reference_fixtures):
    folder = reference_fixtures / 'algorithms'
    expected = np.load(folder / 'deoverlap.npz')
    sources = [np.load(folder / f'proposals_{name}.npz')
               for name in ('basic0', 'iter0', 'basic1')]
    parts = [sources[s]['nodes'][sources[s]['node_offsets'][i]:
                                 sources[s]['node_offsets'][i + 1]]
             for s, i in zip(expected['proposal_source'],
                             expected['proposal_index'], strict=True)]
    proposals = Proposals(np.concatenate(parts),
                          np.r_[0, np.cumsum([len(p) for p in parts])])
    iou, outlier = expected['scores_iou'], expected['outlier_scores_flat']
    cases = {
        'labels_iou_nonms': (iou, {}),
        'labels_random_nonms': (expected['scores_random'], {}),
        'labels_iou_nms0.5': (iou, dict(th_iou=0.5)),
        'labels_iou_thpos0.9': (iou, dict(th_pos=0.9)),
        'labels_iou_outlier_keep': (iou, dict(outlier_scores=outlier,
                                              keep_outlier=True)),
        'labels_iou_outlier_drop': (iou, dict(outlier_scores=outlier)),
    }
    for key, (scores, kwargs) in cases.items():
        labels = deoverlap(scores, proposals, 2000, **kwargs)
        assert np.array_equal(labels, expected[key]), key
