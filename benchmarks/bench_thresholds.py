r"""The automatic (label-free) threshold of the threshold baselines against
one chosen on labelled data: how much pairwise F a first-time user, who
runs a method without a threshold, gives up.

For each ``--set TRAIN_ROOT TRAIN_NAME TEST_ROOT TEST_NAME`` (and the
example's generated MS1M-like set with ``--example``), the train-chosen
threshold is the best pairwise F over a sweep of the *train* graph's
similarities, applied to the test split; the automatic one is
:func:`~ltc_pyg.cluster.threshold.graph_threshold` of the *test* graph, as
``ltc-pyg cluster`` computes it when ``--threshold`` is omitted::

    python benchmarks/bench_thresholds.py --example \
        --set /tmp/synth synth_train /tmp/synth synth_test 256 \
        --set /work/shared/data/cfp_dlib128 cfp_all \
              /work/shared/data/lfw_dlib128 lfw_all 128
"""
from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from torch_geometric.data import Data

from ltc_pyg.config import KNNConfig
from ltc_pyg.data.io import read_features, read_labels
from ltc_pyg.data.synthetic import make_splits
from ltc_pyg.pipelines.report import format_table
from ltc_pyg.pipelines.run import build_graph, cluster, make_method

METHODS = ('knn-threshold', 'chinese-whispers', 'infomap')


def graphs(args: argparse.Namespace, knn: KNNConfig
           ) -> Iterator[tuple[str, Data, Data]]:
    r"""``(name, train graph, test graph)`` per benchmark set."""
    if args.example:
        splits = make_splits(num_train_identities=150,
                             num_test_identities=150, dim=256,
                             mean_size=50.0, seed=0)
        yield ('example (150 ids)',
               *(build_graph(splits[s].x, knn, splits[s].labels)
                 for s in ('train', 'test')))
    for train_root, train_name, test_root, test_name, dim in args.set:
        built = []
        for root, name in ((train_root, train_name), (test_root, test_name)):
            x = read_features(Path(root) / 'features' / f'{name}.bin',
                              int(dim))
            y = read_labels(Path(root) / 'labels' / f'{name}.meta',
                            num_nodes=x.shape[0])
            built.append(build_graph(x, knn, y))
        yield f'{train_name} -> {test_name}', *built


def fscore(graph: Data, method: str, threshold: float | None
           ) -> tuple[float, float]:
    r"""Pairwise F and the threshold used (chosen when ``None``)."""
    built = make_method(method, None if threshold is None
                        else {'threshold': float(threshold)})
    report = cluster(graph, built).report
    return (report['metrics']['pairwise_fscore'],
            report['params'].get('threshold_used', threshold))


def sweep_values(graph: Data, num_values: int) -> np.ndarray:
    r"""From the lower of the median kNN similarity and the 1% quantile of
    the nearest other node's, to the latter's 99% quantile: the whole range
    where any method's best lies."""
    nearest = graph.knn_similarity[:, 1].numpy()
    low = min(float(np.median(graph.knn_similarity[:, 1:].numpy())),
              float(np.quantile(nearest, 0.01)))
    return np.linspace(low, float(np.quantile(nearest, 0.99)), num_values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--example', action='store_true',
                        help="the example's generated set (150 identities)")
    parser.add_argument('--set', nargs=5, action='append', default=[],
                        metavar=('TRAIN_ROOT', 'TRAIN', 'TEST_ROOT', 'TEST',
                                 'DIM'))
    parser.add_argument('--methods', nargs='+', default=list(METHODS))
    parser.add_argument('--k', type=int, default=80)
    parser.add_argument('--num-values', type=int, default=20)
    args = parser.parse_args()
    rows = []
    for name, train, test in graphs(args, KNNConfig(k=args.k)):
        for method in args.methods:
            values = sweep_values(train, args.num_values)
            train_f = [fscore(train, method, v)[0] for v in values]
            chosen = float(values[int(np.nanargmax(train_f))])
            chosen_f = fscore(test, method, chosen)[0]
            auto_f, auto = fscore(test, method, None)
            rows.append({'set': name, 'method': method,
                         'chosen threshold': chosen, 'chosen F': chosen_f,
                         'automatic threshold': auto, 'automatic F': auto_f,
                         'gap': chosen_f - auto_f})
            print(format_table(rows[-1:], list(rows[-1])), flush=True)
    print(format_table(rows, list(rows[0])))


if __name__ == '__main__':
    main()
