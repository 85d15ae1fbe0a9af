r"""GCN-V / GCN-V+E benchmarks: quality against the kNN + threshold baseline,
and inference time / peak memory at scale.

``quality``: trains GCN-V (and GCN-E on top of it) on a labelled train set
with a short budget, picks each method's link threshold ``tau`` on the
*train* set, and scores the test set next to ``knn-threshold`` at its best
threshold on the same test kNN graph (an oracle choice, favouring the
baseline)::

    python benchmarks/bench_gcn_v_e.py quality \
        --train-features /tmp/ltc_data/synth/features/synth_train.bin \
        --train-labels /tmp/ltc_data/synth/labels/synth_train.meta \
        --train-knn /tmp/ltc_data/synth/knns/synth_train/faiss_k_80.npz \
        --test-features ... --test-labels ... --test-knn ... --dim 256 \
        --work /tmp/gcnve_synth

``scale``: GCN-V + GCN-E inference and merging from a checkpoint on a large
set with a cached kNN file; prints wall time and peak RSS per stage::

    python benchmarks/bench_gcn_v_e.py scale --features F.bin --dim 256 \
        --knn K.npz --labels L.meta --checkpoint /tmp/gcnve_synth/ve.pt \
        --param gcn_v.gcn_feat_knn=rerank
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ltc_pyg.cluster.merge import connected_components
from ltc_pyg.cluster.peaks import Peaks, peaks_to_labels
from ltc_pyg.data.io import read_features, read_labels
from ltc_pyg.graph.transforms import knn_to_edges
from ltc_pyg.metrics import evaluate
from ltc_pyg.pipelines.report import StageTimer, format_table
from ltc_pyg.pipelines.run import build_graph, cluster, make_method, train

COLUMNS = ['method', 'threshold', 'pairwise_fscore', 'bcubed_fscore', 'nmi',
           'num_clusters', 'train_seconds', 'budget']


def _graph(features: Path, labels: Path, knn: Path, dim: int):
    x = read_features(features, dim)
    return build_graph(x, labels=read_labels(labels, x.shape[0]),
                       knn_path=knn)


def _grid(similarity: np.ndarray, num: int = 80) -> np.ndarray:
    r"""Thresholds at quantiles of the given similarities (scale-free)."""
    finite = similarity[np.isfinite(similarity)]
    return np.unique(np.round(np.quantile(finite, np.linspace(0.0, 1.0,
                                                              num)), 4))


def _best(labels_true: np.ndarray, candidates: dict[float, np.ndarray]
          ) -> tuple[float, dict[str, float]]:
    scored = {t: evaluate(labels_true, p) for t, p in candidates.items()}
    best = max(scored, key=lambda t: scored[t]['pairwise_fscore'])
    return best, scored[best]


def _peak_labels(peaks: Peaks, thresholds: np.ndarray
                 ) -> dict[float, np.ndarray]:
    return {float(t): peaks_to_labels(peaks, float(t)) for t in thresholds}


def _row(method: str, threshold: float, metrics: dict[str, float],
         labels: int, seconds: float | None, budget: str) -> dict[str, Any]:
    return {'method': method, 'threshold': threshold, **metrics,
            'num_clusters': labels, 'train_seconds': seconds,
            'budget': budget}


def _params(config: Path | None, overrides: list[str]) -> dict[str, Any]:
    params = yaml.safe_load(config.read_text())['params'] if config else {}
    for item in overrides:
        key, _, value = item.partition('=')
        node = params
        *parents, leaf = key.split('.')
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = yaml.safe_load(value)
    return params


def _learned(name: str, method, train_graph, test_graph, seconds: float,
             budget: str) -> list[dict[str, Any]]:
    r"""Chooses ``tau`` on the train graph, then scores the test graph at it
    (and at the test-best ``tau``, for reference)."""
    train_peaks = method.predict_peaks(train_graph)
    grid = _grid(train_peaks.similarity.numpy(), num=40)
    tau, _ = _best(train_graph.y.numpy(), _peak_labels(train_peaks, grid))
    test_peaks = method.predict_peaks(test_graph)
    labels_true = test_graph.y.numpy()
    at_tau = peaks_to_labels(test_peaks, tau)
    oracle, oracle_metrics = _best(labels_true, _peak_labels(
        test_peaks, _grid(test_peaks.similarity.numpy(), num=40)))
    oracle_labels = peaks_to_labels(test_peaks, oracle)
    return [_row(f'{name} (tau from train)', tau,
                 evaluate(labels_true, at_tau), np.unique(at_tau).size,
                 seconds, budget),
            _row(f'{name} (best tau on test)', oracle, oracle_metrics,
                 np.unique(oracle_labels).size, seconds, budget)]


def quality(args: argparse.Namespace) -> list[dict[str, Any]]:
    torch.manual_seed(args.seed)
    train_graph = _graph(args.train_features, args.train_labels,
                         args.train_knn, args.dim)
    test_graph = _graph(args.test_features, args.test_labels, args.test_knn,
                        args.dim)
    labels_true = test_graph.y.numpy()
    rows = []

    edge_index, edge_weight = knn_to_edges(test_graph.knn_neighbor,
                                           test_graph.knn_similarity)
    grid = _grid(test_graph.knn_similarity[:, 1].numpy())
    baseline = {float(t): connected_components(
        edge_index[:, edge_weight >= t], test_graph.num_nodes) for t in grid}
    threshold, metrics = _best(labels_true, baseline)
    rows.append(_row('knn-threshold (best on test)', threshold, metrics,
                     np.unique(baseline[threshold]).size, None, '-'))

    args.work.mkdir(parents=True, exist_ok=True)
    v_params = _params(args.config_v, args.param_v)
    start = time.perf_counter()
    gcn_v = train(train_graph, 'gcn-v', v_params, out=args.work / 'v.pt',
                  seed=args.seed)
    v_seconds = time.perf_counter() - start
    v_train = gcn_v.params.train
    v_budget = (f'{v_train.steps} steps x {v_train.batch_size or "all"} '
                f'nodes, {v_train.optimizer} lr {v_train.lr}')
    rows += _learned('gcn-v', gcn_v, train_graph, test_graph, v_seconds,
                     v_budget)

    e_params = _params(args.config_e, args.param_e)
    e_params['gcn_v_checkpoint'] = str(args.work / 'v.pt')
    e_params['gcn_v'] = v_params
    start = time.perf_counter()
    gcn_ve = train(train_graph, 'gcn-e', e_params, out=args.work / 've.pt',
                   seed=args.seed)
    e_seconds = time.perf_counter() - start
    e_train = gcn_ve.params.train
    e_budget = (f'GCN-V + {e_train.steps} steps x {e_train.batch_size} '
                f'subgraphs, {e_train.optimizer} lr {e_train.lr}')
    rows += _learned('gcn-v+e', gcn_ve, train_graph, test_graph,
                     v_seconds + e_seconds, e_budget)
    return rows


def scale(args: argparse.Namespace) -> list[dict[str, Any]]:
    timer = StageTimer()
    with timer('read features'):
        x = read_features(args.features, args.dim)
        labels = read_labels(args.labels, x.shape[0]) if args.labels else None
    graph = build_graph(x, labels=labels, knn_path=args.knn, timer=timer)
    del x
    params = _params(None, args.param) or None
    method = make_method(args.method, params, checkpoint=args.checkpoint,
                         progress_bar=False)
    result = cluster(graph, method, timer)
    rows = [{'stage': s.name, 'seconds': s.seconds,
             'peak_rss_gb': s.peak_rss_gb} for s in timer.stages]
    rows.append({'stage': 'total', 'seconds': timer.total_seconds,
                 'peak_rss_gb': timer.peak_rss_gb})
    print(json.dumps(result.report['metrics']))
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    q = commands.add_parser('quality')
    for split in ('train', 'test'):
        for kind in ('features', 'labels', 'knn'):
            q.add_argument(f'--{split}-{kind}', type=Path, required=True)
    q.add_argument('--dim', type=int, required=True)
    q.add_argument('--config-v', type=Path, help='gcn-v YAML run config')
    q.add_argument('--config-e', type=Path, help='gcn-v+e YAML run config')
    q.add_argument('--param-v', action='append', default=[],
                   help='gcn-v param override, e.g. train.steps=300')
    q.add_argument('--param-e', action='append', default=[],
                   help='gcn-v+e param override, e.g. train.steps=500')
    q.add_argument('--seed', type=int, default=0)
    q.add_argument('--work', type=Path, required=True,
                   help='folder for the checkpoints')
    q.add_argument('--out', type=Path, help='JSON of the rows')
    s = commands.add_parser('scale')
    s.add_argument('--features', type=Path, required=True)
    s.add_argument('--dim', type=int, required=True)
    s.add_argument('--knn', type=Path, required=True)
    s.add_argument('--labels', type=Path)
    s.add_argument('--method', default='gcn-v+e')
    s.add_argument('--checkpoint', type=Path, required=True)
    s.add_argument('--param', action='append', default=[],
                   help='param override, e.g. gcn_v.gcn_feat_knn=rerank')
    s.add_argument('--out', type=Path, help='JSON of the rows')
    args = parser.parse_args(argv)
    if args.command == 'quality':
        rows = quality(args)
        print(format_table(rows, COLUMNS))
    else:
        rows = scale(args)
        print(format_table(rows, ['stage', 'seconds', 'peak_rss_gb'],
                           '{:.2f}'))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1, default=str))
    return rows


if __name__ == '__main__':
    main()
