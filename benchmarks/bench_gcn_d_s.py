r"""GCN-D / GCN-D+S quality for a proposal preset, with the upper bound,
against the kNN-threshold baseline.

``quality``: trains GCN-D and GCN-S on a labelled training set, clusters a
test set with GCN-D, GCN-D+S and the upper bound (proposals scored by their
true IoU), and compares with ``knn-threshold`` at its best threshold on the
same test kNN graph (an oracle choice, which favours the baseline).

Proposal thresholds are similarities, so they depend on the embedding. The
MS1M settings of the original configs (2: th 0.7 / 0.75; 8: basic 0.6 / 0.7
/ 0.75 with iterative (k, sv_max_size) = (2, 8), (3, 5) at 0.4) are mapped
onto the embedding's scale by ``th -> 1 - (1 - th) * s`` and the split
step by ``step -> step * s``, ``s = (1 - t) / 0.3``, where ``t`` is the best
knn-threshold threshold on the *training* graph (MS1M's basic 0.7 plays
that role there). Nothing is tuned on the test labels.

Speed and memory at scale are measured for every method by
``bench_methods.py scale``.

Example::

    python benchmarks/bench_gcn_d_s.py quality \
        --train /tmp/ltc_data/synth synth_train --test /tmp/ltc_data/synth \
        synth_test --dim 256 --preset 2 --save /tmp/gcn_d_synth_2.pt
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from ltc_pyg.config import KNNConfig
from ltc_pyg.data.io import read_features, read_labels
from ltc_pyg.metrics import evaluate
from ltc_pyg.pipelines.checkpoint import save_checkpoint
from ltc_pyg.pipelines.gcn_d import (
    GCNDParams,
    GCNDSParams,
    graph_proposals,
    upper_bound_labels,
)
from ltc_pyg.pipelines.methods import build_method
from ltc_pyg.pipelines.report import StageTimer, format_table
from ltc_pyg.pipelines.run import build_graph, cluster
from ltc_pyg.pipelines.training import TrainParams
from ltc_pyg.proposals.super_vertex import IterativeSetting, ProposalSetting

THRESHOLDS = np.round(np.arange(0.30, 0.99, 0.025), 3)


def load(root: str, name: str, dim: int, knn: str | None = None,
         timer: StageTimer | None = None):
    r"""``ROOT/features/NAME.bin``, ``ROOT/labels/NAME.meta`` and the
    cached kNN ``knn`` (default ``ROOT/knns/NAME/faiss_k_80.npz``)."""
    root = Path(root)
    features = read_features(root / 'features' / f'{name}.bin', dim)
    labels_path = root / 'labels' / f'{name}.meta'
    labels = read_labels(labels_path) if labels_path.exists() else None
    return build_graph(features, labels=labels, timer=timer,
                       knn_path=knn or root / 'knns' / name /
                       'faiss_k_80.npz')


def best_threshold(graph) -> tuple[float, dict]:
    r"""The knn-threshold threshold with the best pairwise F."""
    best = (None, {'pairwise_fscore': -1})
    for threshold in THRESHOLDS:
        method = build_method('knn-threshold', {'threshold': float(threshold)})
        metrics = cluster(graph, method).report['metrics']
        if metrics['pairwise_fscore'] > best[1]['pairwise_fscore']:
            best = (float(threshold), metrics)
    return best


def settings(preset: int, scale: float,
             max_size: int = 300) -> tuple[ProposalSetting, ...]:
    r"""The original MS1M settings of ``preset`` mapped by ``scale``, with
    the basic settings' ``max_size``."""
    def th(value: float) -> float:
        return round(1 - (1 - value) * scale, 4)

    step = round(0.05 * scale, 4)

    if preset == 2:
        return tuple(ProposalSetting(k=80, th=th(t), step=step,
                                     max_size=max_size, min_size=3)
                     for t in (0.7, 0.75))
    iterations = tuple(IterativeSetting(k=k, th=th(0.4), step=step,
                                        max_size=500, min_size=3,
                                        sv_max_size=sv, sv_min_size=2)
                       for k, sv in ((2, 8), (3, 5)))
    return tuple(ProposalSetting(k=80, th=th(t), step=step,
                                 max_size=max_size, min_size=3, keep=keep,
                                 iterations=iterations)
                 for t, keep in ((0.6, True), (0.7, True), (0.75, False)))


def row(name: str, labels_true, labels, seconds: float, **extra) -> dict:
    metrics = evaluate(labels_true, labels)
    return {'method': name, 'Fp': metrics['pairwise_fscore'],
            'Fb': metrics['bcubed_fscore'], 'NMI': metrics['nmi'],
            'clusters': int(np.unique(labels).size),
            'seconds': round(seconds, 1), **extra}


def quality(args: argparse.Namespace) -> None:
    train_graph = load(*args.train, args.dim, args.train_knn)
    test_graph = load(*args.test, args.dim, args.test_knn)
    labels_true = test_graph.y.numpy()
    rows = []

    start = time.perf_counter()
    t_test, metrics = best_threshold(test_graph)
    rows.append({'method': f'knn-threshold (best th={t_test}, oracle)',
                 'Fp': metrics['pairwise_fscore'],
                 'Fb': metrics['bcubed_fscore'], 'NMI': metrics['nmi'],
                 'clusters': None,
                 'seconds': round(time.perf_counter() - start, 1)})
    t_train, _ = best_threshold(train_graph)
    scale = (1 - t_train) / 0.3
    proposals = settings(args.preset, scale, args.max_size)
    described = [(s.th, s.keep, [i.th for i in s.iterations])
                 for s in proposals]
    print(f'train best threshold {t_train} -> scale {scale:.3f}; settings: '
          f'{described}')

    train = TrainParams(epochs=args.epochs, batch_size=32, optimizer='adam',
                        lr=args.lr, weight_decay=1e-4, milestones=(0.7, ))
    d_params = GCNDParams(proposals=proposals, hidden_channels=(512, 64),
                          weighted=args.preset == 2, train=train)
    s_params = GCNDSParams(
        gcn_d=d_params, hidden_channels=(512, 64),
        train=dataclasses.replace(train, batch_size=16,
                                  epochs=args.seg_epochs))

    start = time.perf_counter()
    upper = upper_bound_labels(test_graph, d_params)
    num = len(graph_proposals(test_graph, d_params))
    rows.append(row('upper bound (true IoU)', labels_true, upper,
                    time.perf_counter() - start, proposals=num))

    start = time.perf_counter()
    both = build_method('gcn-d+s', s_params, seed=args.seed)
    both.fit(train_graph)
    train_seconds = time.perf_counter() - start
    print(f'trained GCN-D ({args.epochs} epochs) + GCN-S ({args.seg_epochs} '
          f'epochs) in {train_seconds:.0f} s')
    if args.save:
        save_checkpoint(args.save, both.gcn_d, KNNConfig(k=80))

    start = time.perf_counter()
    labels = cluster(test_graph, both.gcn_d).labels
    rows.append(row('GCN-D', labels_true, labels, time.perf_counter() - start,
                    proposals=num))
    start = time.perf_counter()
    labels = cluster(test_graph, both).labels
    rows.append(row('GCN-D+S', labels_true, labels,
                    time.perf_counter() - start, proposals=num))
    print(format_table(rows, ['method', 'Fp', 'Fb', 'NMI', 'clusters',
                              'proposals', 'seconds']))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = parser.add_subparsers(dest='mode', required=True)
    q = sub.add_parser('quality')
    q.add_argument('--train', nargs=2, metavar=('ROOT', 'NAME'),
                   required=True)
    q.add_argument('--test', nargs=2, metavar=('ROOT', 'NAME'), required=True)
    q.add_argument('--train-knn', help='kNN file of the training set')
    q.add_argument('--test-knn', help='kNN file of the test set')
    q.add_argument('--dim', type=int, required=True)
    q.add_argument('--preset', type=int, choices=[2, 8], default=2)
    q.add_argument('--epochs', type=int, default=4)
    q.add_argument('--max-size', type=int, default=300,
                   help="the basic settings' max_size (MS1M: 300; larger "
                   'where identities are larger)')
    q.add_argument('--seg-epochs', type=int, default=20)
    q.add_argument('--lr', type=float, default=1e-3)
    q.add_argument('--seed', type=int, default=0)
    q.add_argument('--save', help='write the trained GCN-D checkpoint here')
    args = parser.parse_args()
    quality(args)


if __name__ == '__main__':
    main()
