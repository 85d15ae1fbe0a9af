import numpy as np
import pytest

from ltc_pyg.proposals.super_vertex import Proposals
from ltc_pyg.proposals.targets import proposal_targets


def test_hand_computed_targets():
    labels = np.array([7, 5, 5, 7, 5, 9])
    proposals = Proposals(np.array([0, 1, 2, 3, 4, 5, 0]),
                          np.array([0, 4, 5, 7]))
    targets = proposal_targets(proposals, labels)
    # Proposal 0 = labels (7, 5, 5, 7): a tie, won by 7 (met first);
    # |P & G| = 2, |G| = 2, |P| = 4.
    assert targets.majority_label.tolist() == [7, 5, 9]
    assert targets.majority_tie.tolist() == [True, False, True]
    assert targets.iou.tolist() == [0.5, 1 / 3, 0.5]
    assert targets.iop.tolist() == [0.5, 1.0, 0.5]


def test_tie_follows_stored_order():
    labels = np.array([7, 5])
    proposals = Proposals(np.array([1, 0]), np.array([0, 2]))
    assert proposal_targets(proposals, labels).majority_label.tolist() == [5]


def test_empty_and_invalid():
    targets = proposal_targets(Proposals.concat([]), np.array([0, 1]))
    assert targets.iou.size == 0
    with pytest.raises(ValueError, match='outside the 2 labelled'):
        proposal_targets(Proposals(np.array([2]), np.array([0, 1])),
                         np.array([0, 1]))
    with pytest.raises(ValueError, match='1 of 1 proposals are empty'):
        proposal_targets(Proposals(np.zeros(0, np.int64), np.array([0, 0])),
                         np.array([0, 1]))


@pytest.mark.parametrize('name', ['basic0', 'basic1', 'basic2', 'iter0',
                                  'iter1'])
def test_matches_reference(reference_fixtures, name):
    labels = np.loadtxt(reference_fixtures / 'graph/labels.meta',
                        dtype=np.int64)
    expected = np.load(reference_fixtures / f'algorithms/proposals_{name}.npz')
    targets = proposal_targets(
        Proposals(expected['nodes'], expected['node_offsets']), labels)
    assert np.array_equal(targets.majority_label, expected['majority_label'])
    assert np.array_equal(targets.majority_tie, expected['majority_tie'] == 1)
    assert np.allclose(targets.iou, expected['iou'], rtol=0, atol=1e-12)
    assert np.allclose(targets.iop, expected['iop'], rtol=0, atol=1e-12)
