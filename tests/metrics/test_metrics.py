import itertools
import json
import math

import numpy as np
import pytest
import sklearn.metrics

from ltc_pyg.metrics import METRIC_KEYS, bcubed, evaluate, nmi, pairwise

TRUE = np.array([0, 0, 0, 1, 1, 2])
PRED = np.array([5, 5, 7, 7, 7, 9])


def brute_pairwise(labels_true, labels_pred):
    same_true = same_pred = both = 0
    for i, j in itertools.permutations(range(len(labels_true)), 2):
        t = labels_true[i] == labels_true[j]
        p = labels_pred[i] == labels_pred[j]
        same_true, same_pred, both = same_true + t, same_pred + p, both + t * p
    precision = both / same_pred if same_pred else math.nan
    recall = both / same_true if same_true else math.nan
    return precision, recall


def brute_bcubed(labels_true, labels_pred):
    precision, recall = [], []
    for i in range(len(labels_true)):
        cluster = labels_pred == labels_pred[i]
        identity = labels_true == labels_true[i]
        precision.append((cluster & identity).sum() / cluster.sum())
        recall.append((cluster & identity).sum() / identity.sum())
    return np.mean(precision), np.mean(recall)


def test_hand_computed_values():
    # Ordered same-cluster pairs: pred {5,5}: 2, {7,7,7}: 6 -> 8; correct:
    # (0,1) twice + (3,4) twice = 4. True pairs: 6 + 2 = 8.
    assert pairwise(TRUE, PRED) == pytest.approx((0.5, 0.5, 0.5))
    # BCubed precision: samples 0,1: 1; 2: 1/3; 3,4: 2/3; 5: 1 -> 14/3 / 6.
    # Recall: 0,1: 2/3; 2: 1/3; 3,4: 1; 5: 1 -> 14/3 / 6.
    assert bcubed(TRUE, PRED) == pytest.approx((7 / 9, 7 / 9, 7 / 9))


@pytest.mark.parametrize('seed', range(5))
def test_agree_with_brute_force_and_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels_true = rng.integers(0, 5, 40)
    labels_pred = rng.integers(-2, 6, 40)
    assert pairwise(labels_true, labels_pred)[:2] == pytest.approx(
        brute_pairwise(labels_true, labels_pred))
    assert bcubed(labels_true, labels_pred)[:2] == pytest.approx(
        brute_bcubed(labels_true, labels_pred))
    assert nmi(labels_true, labels_pred) == pytest.approx(
        sklearn.metrics.normalized_mutual_info_score(labels_true,
                                                     labels_pred))


@pytest.mark.parametrize('metric', [pairwise, bcubed])
def test_symmetry_swaps_precision_and_recall(metric):
    forward, backward = metric(TRUE, PRED), metric(PRED, TRUE)
    assert forward.precision == pytest.approx(backward.recall)
    assert forward.fscore == pytest.approx(backward.fscore)


def test_invariant_to_label_permutation():
    renamed = np.array([40, 40, -3, -3, -3, 0])
    assert evaluate(TRUE, renamed) == pytest.approx(evaluate(TRUE, PRED))


def test_bounds_and_perfect_score():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 100)
    assert all(v == pytest.approx(1) for v in evaluate(labels,
                                                       labels).values())
    values = evaluate(labels, rng.integers(0, 7, 100))
    assert all(0 <= v <= 1 for v in values.values())


def test_undefined_values_are_nan():
    scores = evaluate(np.arange(5), np.arange(5)[::-1])
    assert math.isnan(scores['pairwise_precision'])
    assert scores['bcubed_fscore'] == 1 and scores['nmi'] == 1
    assert nmi(np.zeros(4, int), np.zeros(4, int)) == 1.0
    assert nmi(np.array([0, 0, 1, 1]), np.zeros(4, int)) == 0.0


def test_rejects_bad_labels():
    with pytest.raises(ValueError, match='Got 3 true labels but 2'):
        evaluate(np.zeros(3, int), np.zeros(2, int))
    with pytest.raises(ValueError, match='non-integer'):
        evaluate(np.array([0.5, 1.0]), np.zeros(2, int))
    with pytest.raises(ValueError, match='empty'):
        evaluate(np.zeros(0, int), np.zeros(0, int))


def test_keys():
    assert tuple(evaluate(TRUE, PRED)) == METRIC_KEYS


def test_match_reference_fixtures(reference_fixtures):
    folder = reference_fixtures / 'algorithms'
    inputs = np.load(folder / 'metrics_inputs.npz')
    expected = json.loads((folder / 'metrics_expected.json').read_text())
    assert len(expected) == 6
    for name, values in expected.items():
        ours = evaluate(inputs[f'gt_{name}'], inputs[f'pred_{name}'])
        reference = (*values['pairwise'], *values['bcubed'], values['nmi'])
        for key, want in zip(METRIC_KEYS, reference, strict=True):
            got = ours[key]
            if want is None:
                assert math.isnan(got), (name, key)
            else:
                assert got == pytest.approx(want, abs=1e-12), (name, key)
