r"""L-GCN benchmarks: quality against the kNN + threshold baseline, and
inference time / peak memory at scale.

``quality``: trains ``lgcn`` on a labelled train set with a short budget and
clusters the test set, next to ``knn-threshold`` at its best threshold on
the same test kNN graph (an oracle choice, favouring the baseline)::

    python benchmarks/bench_lgcn.py quality \
        --train-features /tmp/ltc_data/synth/features/synth_train.bin \
        --train-labels /tmp/ltc_data/synth/labels/synth_train.meta \
        --train-knn /tmp/ltc_data/synth/knns/synth_train/faiss_k_80.npz \
        --test-features ... --test-labels ... --test-knn ... --dim 256 \
        --k-at-hop 20 5 --active-connection 5 --save-checkpoint lgcn.pt

``scale``: from a checkpoint, on a large set with a cached kNN file.
``--sample N --setting K1 K2 A`` (repeatable) times the linkage of ``N``
random pivots per setting (subgraph building and model separately) and
extrapolates to every pivot; ``--full K1 K2 A`` runs the whole clustering
with that setting and prints wall time and peak RSS per stage::

    python benchmarks/bench_lgcn.py scale --features F.bin --dim 256 \
        --knn K.npz --labels L.meta --checkpoint lgcn.pt --sample 2000 \
        --setting 79 10 10 --setting 20 5 5 --full 5 2 2

Torch runs on ``--threads`` threads (default 1: on a shared 2-core machine
two threads were several times slower than one).
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ltc_pyg.config import KNNConfig
from ltc_pyg.data.io import read_features, read_labels
from ltc_pyg.pipelines.checkpoint import save_checkpoint
from ltc_pyg.pipelines.estimator import threshold_sweep
from ltc_pyg.pipelines.knn_threshold import KNNThreshold
from ltc_pyg.pipelines.report import StageTimer, format_table
from ltc_pyg.pipelines.run import build_graph, cluster, make_method, train

COLUMNS = ['method', 'setting', 'pairwise_fscore', 'bcubed_fscore', 'nmi',
           'num_clusters', 'train_seconds', 'seconds']


def _graph(features: Path, knn: Path, dim: int, labels: Path | None = None,
           timer: StageTimer | None = None):
    timer = timer or StageTimer()
    with timer('read features'):
        x = read_features(features, dim)
    y = None if labels is None else read_labels(labels, x.shape[0])
    return build_graph(x, labels=y, knn_path=knn, timer=timer)


def _setting(values: list[int]) -> dict[str, Any]:
    return {'k_at_hop': [values[0], values[1]],
            'active_connection': values[2]}


def quality(args: argparse.Namespace) -> None:
    train_graph = _graph(args.train_features, args.train_knn, args.dim,
                         args.train_labels)
    test_graph = _graph(args.test_features, args.test_knn, args.dim,
                        args.test_labels)
    params = {'k_at_hop': args.k_at_hop,
              'active_connection': args.active_connection,
              'train': {'epochs': args.epochs, 'batch_size': args.batch_size,
                        'max_pivots': args.max_pivots,
                        'optimizer': args.optimizer, 'lr': args.lr}}
    start = time.perf_counter()
    method = train(train_graph, 'lgcn', params, seed=args.seed,
                   progress_bar=True)
    train_seconds = time.perf_counter() - start
    if args.save_checkpoint:
        save_checkpoint(args.save_checkpoint, method,
                        KNNConfig(k=train_graph.knn_neighbor.size(1)))
    start = time.perf_counter()
    result = cluster(test_graph, method)
    setting = (f'k_at_hop={args.k_at_hop}, ac={args.active_connection}, '
               f'{method.step} steps x {args.batch_size}')
    rows = [{'method': 'lgcn', 'setting': setting, **result.report['metrics'],
             'num_clusters': result.report['num_clusters'],
             'train_seconds': train_seconds,
             'seconds': time.perf_counter() - start}]
    start = time.perf_counter()
    sweep = threshold_sweep(test_graph, KNNThreshold(), num_values=40)
    best = int(np.argmax([m['pairwise_fscore'] for m in sweep['metrics']]))
    rows.append({'method': 'knn-threshold (best of 40)',
                 'setting': f"threshold={sweep['values'][best]:.4f}",
                 **sweep['metrics'][best], 'num_clusters': None,
                 'train_seconds': None,
                 'seconds': (time.perf_counter() - start) / 40})
    print(format_table(rows, COLUMNS))


def scale(args: argparse.Namespace) -> None:
    timer = StageTimer()
    graph = _graph(args.features, args.knn, args.dim, args.labels, timer)
    num_nodes = graph.num_nodes
    rows = []
    generator = torch.Generator().manual_seed(args.seed)
    sample = torch.randperm(num_nodes, generator=generator)[:args.sample]
    for values in args.setting:
        method = make_method('lgcn', _setting(values), args.checkpoint)
        method.linkage(graph, sample[:method.params.inference_batch_size])
        batch = method.transform.subgraphs(graph, sample)  # warm-up, sizes
        start = time.perf_counter()
        method.linkage(graph, sample)
        seconds = time.perf_counter() - start
        rows.append({'setting': str(values),
                     'nodes_per_pivot': batch.num_nodes / sample.numel(),
                     'edges_per_pivot': batch.num_edges / sample.numel(),
                     'subgraph_ms_per_pivot': 1e3 * method.linkage_seconds_[
                         'subgraphs'] / sample.numel(),
                     'model_ms_per_pivot': 1e3 * method.linkage_seconds_[
                         'model'] / sample.numel(),
                     'extrapolated_linkage_s': seconds / sample.numel()
                     * num_nodes})
    if rows:
        print(f'Linkage of {sample.numel()} random pivots of {num_nodes}:')
        print(format_table(rows, list(rows[0])))
    if args.full:
        method = make_method('lgcn', _setting(args.full), args.checkpoint,
                             progress_bar=True)
        result = cluster(graph, method, timer)
        report = result.report
        stage_rows = [dataclasses.asdict(stage) for stage in timer.stages]
        print(f'Full clustering, setting {args.full}, {num_nodes} nodes:')
        print(format_table(stage_rows, ['name', 'seconds', 'peak_rss_gb']))
        print(f"total {report['total_seconds']:.1f} s, peak RSS "
              f"{report['peak_rss_gb']:.2f} GB, linkage split "
              f"{method.linkage_seconds_}")
        if report['metrics'] is not None:
            print(format_table([{**report['metrics'],
                                 'num_clusters': report['num_clusters']}],
                               ['pairwise_fscore', 'bcubed_fscore', 'nmi',
                                'num_clusters']))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--seed', type=int, default=0)
    commands = parser.add_subparsers(dest='command', required=True)
    q = commands.add_parser('quality')
    for split in ('train', 'test'):
        for what in ('features', 'labels', 'knn'):
            q.add_argument(f'--{split}-{what}', type=Path, required=True)
    q.add_argument('--dim', type=int, required=True)
    q.add_argument('--k-at-hop', type=int, nargs=2, default=[20, 5])
    q.add_argument('--active-connection', type=int, default=5)
    q.add_argument('--epochs', type=int, default=1)
    q.add_argument('--batch-size', type=int, default=16)
    q.add_argument('--max-pivots', type=int, default=8000)
    q.add_argument('--optimizer', default='adam')
    q.add_argument('--lr', type=float, default=1e-3)
    q.add_argument('--save-checkpoint', type=Path)
    s = commands.add_parser('scale')
    s.add_argument('--features', type=Path, required=True)
    s.add_argument('--dim', type=int, required=True)
    s.add_argument('--knn', type=Path, required=True)
    s.add_argument('--labels', type=Path)
    s.add_argument('--checkpoint', type=Path, required=True)
    s.add_argument('--sample', type=int, default=1000)
    s.add_argument('--setting', type=int, nargs=3, action='append',
                   default=[], metavar=('K1', 'K2', 'AC'))
    s.add_argument('--full', type=int, nargs=3, metavar=('K1', 'K2', 'AC'))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.command == 'quality':
        quality(args)
    else:
        scale(args)


if __name__ == '__main__':
    main()
