r"""Time of the three metrics on MS1M-sized label vectors (584,013 samples,
8,573 identities), ours against baselines measured in the same run:

* pairwise: scikit-learn's ``pair_confusion_matrix``;
* BCubed: a per-identity loop with set intersections, the algorithm of the
  original evaluation (~20 s there);
* NMI: scikit-learn's ``normalized_mutual_info_score``.

Usage::

    python benchmarks/bench_metrics.py [--num-samples 584013] [--repeat 3]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import sklearn.metrics

from ltc_pyg.metrics import bcubed, evaluate, nmi, pairwise


def make_labels(num_samples: int, num_identities: int,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Long-tailed true labels and a prediction that splits 30% of the
    identities in two and merges 10% of them pairwise."""
    rng = np.random.default_rng(seed)
    weights = rng.lognormal(0, 1, num_identities)
    labels_true = rng.choice(num_identities, num_samples,
                             p=weights / weights.sum())
    labels_pred = labels_true.copy()
    split = rng.random(num_identities) < 0.3
    halves = rng.random(num_samples) < 0.5
    labels_pred[split[labels_true] & halves] += num_identities
    merged = rng.random(num_identities) < 0.1
    labels_pred[merged[labels_true]] //= 2
    return labels_true, labels_pred


def bcubed_per_identity_loop(labels_true: np.ndarray,
                             labels_pred: np.ndarray) -> tuple[float, float]:
    r"""BCubed by a loop over identities and the clusters they meet."""
    members_of = {label: np.flatnonzero(labels_pred == label)
                  for label in np.unique(labels_pred)}
    precision = recall = 0.0
    for label in np.unique(labels_true):
        members = np.flatnonzero(labels_true == label)
        for cluster in np.unique(labels_pred[members]):
            overlap = np.intersect1d(members, members_of[cluster]).size
            precision += overlap**2 / members_of[cluster].size
            recall += overlap**2 / members.size
    return precision / labels_true.size, recall / labels_true.size


def sklearn_pairwise(labels_true: np.ndarray,
                     labels_pred: np.ndarray) -> tuple[float, float]:
    (_, fp), (fn, tp) = sklearn.metrics.cluster.pair_confusion_matrix(
        labels_true, labels_pred)
    return tp / (tp + fp), tp / (tp + fn)


def best_of(repeat: int, function, *args):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function(*args)
        times.append(time.perf_counter() - start)
    return min(times), result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--num-samples', type=int, default=584_013)
    parser.add_argument('--num-identities', type=int, default=8_573)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    labels_true, labels_pred = make_labels(args.num_samples,
                                           args.num_identities, args.seed)
    rows = []
    ours, ours_pairwise = best_of(args.repeat, pairwise, labels_true,
                                  labels_pred)
    base, base_pairwise = best_of(1, sklearn_pairwise, labels_true,
                                  labels_pred)
    assert np.allclose(ours_pairwise[:2], base_pairwise)
    rows.append(('pairwise', ours, 'sklearn pair_confusion_matrix', base))
    ours, ours_bcubed = best_of(args.repeat, bcubed, labels_true, labels_pred)
    base, base_bcubed = best_of(1, bcubed_per_identity_loop, labels_true,
                                labels_pred)
    assert np.allclose(ours_bcubed[:2], base_bcubed)
    rows.append(('bcubed', ours, 'per-identity loop (original algorithm)',
                 base))
    ours, ours_nmi = best_of(args.repeat, nmi, labels_true, labels_pred)
    base, base_nmi = best_of(1, sklearn.metrics.normalized_mutual_info_score,
                             labels_true, labels_pred)
    assert np.isclose(ours_nmi, base_nmi)
    rows.append(('nmi', ours, 'sklearn normalized_mutual_info_score', base))
    total, scores = best_of(args.repeat, evaluate, labels_true, labels_pred)

    print(f'{args.num_samples} samples, {args.num_identities} identities, '
          f'best of {args.repeat}')
    print('| metric | ltc_pyg (s) | baseline | baseline (s) | speed-up |')
    print('|---|---|---|---|---|')
    for name, ours, baseline, base in rows:
        print(f'| {name} | {ours:.3f} | {baseline} | {base:.2f} | '
              f'{base / ours:.0f}x |')
    print(f'| all three (`evaluate`) | {total:.3f} | | | |')
    print('scores: ' + ', '.join(f'{k}={v:.4f}' for k, v in scores.items()))


if __name__ == '__main__':
    main()
