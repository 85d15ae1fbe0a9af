r"""Every registered method on one benchmark, in one table: quality on a
train -> test split, and wall time and peak memory per stage at scale.

``quality``: learned methods train on the train split with the budgets of
``--config`` (a YAML mapping method name -> params; see
``benchmarks/configs/``), and their checkpoints go to ``--work`` (reused
by later runs with the same params, unless ``--retrain``). Every
method with a similarity threshold (``threshold``, ``tau``) gets it chosen
on the *train* split, the value with the best pairwise F over a sweep of
the train graph's similarities (no test label is looked at; learned
methods that chose theirs in training keep that value); methods that
take a number of clusters get the number of test identities (the oracle
count, as in the original tables). Proposal thresholds of ``gcn-d`` and
``gcn-d+s`` come from the config, in MS1M's similarity units, and are
mapped onto the embedding's scale by ``th -> 1 - (1 - th) * s`` and
``step -> step * s``, ``s = (1 - t) / 0.3``, ``t`` the best
``knn-threshold`` threshold on the train split (MS1M's basic setting 0.7
plays that role there)::

    python benchmarks/bench_methods.py quality \
        --train /tmp/ltc_bench/synth synth_train \
        --test /tmp/ltc_bench/synth synth_test --dim 256 \
        --config benchmarks/configs/synthetic.yaml --work /tmp/ltc_bench/ckpt

``scale``: ``ltc-pyg cluster`` in a fresh process per set and method, on a
cached kNN file, reading each stage's time and peak RSS from its report.
Learned methods use the checkpoints that ``quality`` wrote in ``--work``.
k-means and spectral get the number of identities of each set. A method
whose expected time on a set, extrapolated from its runs on the smaller
sets (``t ~ N^a``), exceeds ``--budget`` seconds is not run there; the
table says so with the estimate. ``--extrapolate 5210000`` adds a table of
growth per method (time exponent, bytes per node of peak RSS, pairwise-F
change between the two largest sets) and the time and memory expected at
the given sizes::

    python benchmarks/bench_methods.py scale --dim 256 \
        --data /tmp/ltc_bench/synth10k synth_test_10k \
        --data /tmp/ltc_bench/synth584k synth_test_584k \
        --work /tmp/ltc_bench/ckpt --methods knn-threshold gcn-v+e cdp
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ltc_pyg.config import from_dict, to_dict
from ltc_pyg.data.io import atomic_write, read_features, read_labels
from ltc_pyg.pipelines.gcn_d import GCNDParams, scaled_settings
from ltc_pyg.pipelines.methods import METHODS, get_method
from ltc_pyg.pipelines.report import format_table
from ltc_pyg.pipelines.run import (
    best_threshold,
    build_graph,
    cluster,
    make_method,
    threshold_sweep,
    train,
)

#: Learned methods built on another one's checkpoint: (base, param key).
BUILDS_ON = {'gcn-v+e': ('gcn-v', 'gcn_v'), 'gcn-d+s': ('gcn-d', 'gcn_d')}
CLUSTER_COUNT_METHODS = ('kmeans', 'minibatch-kmeans', 'spectral')
QUALITY_COLUMNS = ['method', 'chosen on train', 'pairwise_fscore',
                   'bcubed_fscore', 'nmi', 'clusters', 'train s',
                   'cluster s']


def unique_methods(names: list[str] | None) -> list[str]:
    r"""The methods to run (all registered by default), aliases once."""
    seen: dict[str, str] = {}
    for name in names or list(METHODS):
        get_method(name)
        if METHODS[name] not in seen.values():
            seen[name] = METHODS[name]
    return list(seen)


def load_graph(root: str, name: str, dim: int, knn_dir: Path | None):
    r"""``ROOT/features/NAME.bin``, its labels and its cached kNN."""
    root_path = Path(root)
    x = read_features(root_path / 'features' / f'{name}.bin', dim)
    labels = read_labels(root_path / 'labels' / f'{name}.meta', x.shape[0])
    return build_graph(x, labels=labels,
                       knn_path=knn_path(root, name, knn_dir))


def knn_path(root: str, name: str, knn_dir: Path | None = None) -> Path:
    r"""``KNN_DIR/NAME/faiss_k_80.npz``, ``KNN_DIR`` by default
    ``ROOT/knns`` (the original layout)."""
    return (knn_dir or Path(root) / 'knns') / name / 'faiss_k_80.npz'


def best_on_train(graph, method, cache: Path | None = None,
                  reuse: bool = True) -> tuple[str, float] | None:
    r"""The method's threshold parameter and its value with the best
    pairwise F on the (train) graph, or ``None`` without one.

    With ``cache`` (a JSON file), every choice is recorded there, and with
    ``reuse`` a sweep of the same method, parameters, seed and graph (node
    count and similarity sum) is read from it instead of run again: the
    choice is a deterministic function of those.
    """
    key = json.dumps([method.name, dataclasses.asdict(method.params),
                      method.seed, graph.num_nodes,
                      round(float(graph.knn_similarity.double().sum()), 3)],
                     default=str)
    stored = (json.loads(cache.read_text())
              if cache is not None and cache.is_file() else {})
    if reuse and key in stored:
        return None if stored[key] is None else tuple(stored[key])
    sweep = threshold_sweep(graph, method)
    best = None if sweep is None else (sweep['param'], best_threshold(sweep))
    if cache is not None:
        with atomic_write(cache, 'w') as file:
            json.dump({**stored, key: best}, file, indent=1)
    return best


def scale_proposals(params: dict[str, Any], scale: float) -> None:
    r"""Maps the MS1M settings of ``params`` (``proposals``,
    ``train_proposals``, with their iterative settings) onto the
    embedding's scale, in place
    (:func:`~ltc_pyg.pipelines.gcn_d.scaled_settings`)."""
    given = {key: params[key] for key in ('proposals', 'train_proposals')
             if params.get(key)}
    settings = from_dict(GCNDParams, given, 'proposal settings')
    for key in given:
        params[key] = [to_dict(setting) for setting in
                       scaled_settings(getattr(settings, key), scale)]


def trained(graph, name: str, params: dict[str, Any],
            args: argparse.Namespace) -> tuple[Any, float]:
    r"""The method trained on ``graph``, and the training seconds. A
    checkpoint in ``--work`` trained with the same params and seed is
    reused (its time read from ``NAME.json`` beside it) unless
    ``--retrain``."""
    checkpoint = args.work / f'{name}.pt'
    record = args.work / f'{name}.json'
    key = json.dumps({'params': params, 'seed': args.seed}, sort_keys=True)
    stored = json.loads(record.read_text()) if record.is_file() else {}
    if (not args.retrain and checkpoint.is_file()
            and stored.get('key') == key):
        print(f'{name}: reusing {checkpoint}', file=sys.stderr, flush=True)
        return (make_method(name, params, checkpoint=checkpoint),
                stored['train_seconds'])
    start = time.perf_counter()
    method = train(graph, name, params, out=checkpoint, seed=args.seed)
    seconds = time.perf_counter() - start
    with atomic_write(record, 'w') as file:
        json.dump({'key': key, 'train_seconds': seconds}, file)
    return method, seconds


def quality(args: argparse.Namespace) -> list[dict[str, Any]]:
    config = yaml.safe_load(args.config.read_text()) or {}
    train_graph = load_graph(*args.train, args.dim, args.knn_dir)
    test_graph = load_graph(*args.test, args.dim, args.knn_dir)
    num_identities = int(np.unique(test_graph.y.numpy()).size)
    args.work.mkdir(parents=True, exist_ok=True)
    baseline = make_method('knn-threshold', {'threshold': 0.5})
    sweeps = args.work / 'sweeps.json'
    _, train_threshold = best_on_train(train_graph, baseline, sweeps,
                                       not args.retrain)
    scale = (1 - train_threshold) / 0.3
    print(f'train split: best knn-threshold {train_threshold:.4f} -> '
          f'proposal scale {scale:.3f}; {num_identities} test identities',
          flush=True)

    rows = []
    for name in unique_methods(args.methods):
        params = dict(config.get(name) or {})
        chosen = ''
        if name in CLUSTER_COUNT_METHODS:
            params['n_clusters'] = num_identities
            chosen = f'n_clusters={num_identities} (oracle)'
        scale_proposals(params, scale)
        train_seconds = None
        if get_method(name).trainable:
            if name in BUILDS_ON:
                base, key = BUILDS_ON[name]
                params[f'{key}_checkpoint'] = str(args.work / f'{base}.pt')
                params[key] = {**(config.get(base) or {}),
                               **params.get(key, {})}
                scale_proposals(params[key], scale)
            method, train_seconds = trained(train_graph, name, params, args)
        else:
            method = make_method(name, params)
        if method.trained_threshold is not None:  # training chose it
            chosen = (f'{method.threshold_name}='
                      f'{method.trained_threshold:.4f}')
        elif (best := best_on_train(train_graph, method, sweeps,
                                    not args.retrain)) is not None:
            key, value = best
            method.params = dataclasses.replace(method.params,
                                                **{key: value})
            chosen = f'{key}={value:.4f}'
        rows.append(quality_row(name, chosen, method, test_graph,
                                train_seconds))
    return rows


def quality_row(name: str, chosen: str, method: Any, graph: Any,
                train_seconds: float | None) -> dict[str, Any]:
    r"""One row of a quality table: ``method`` clusters the (test) graph;
    its metrics, cluster count and seconds (also printed to stderr)."""
    start = time.perf_counter()
    result = cluster(graph, method)
    row = {'method': name, 'chosen on train': chosen,
           **result.report['metrics'],
           'clusters': result.report['num_clusters'],
           'train s': train_seconds,
           'cluster s': time.perf_counter() - start}
    print(json.dumps(row, default=str), file=sys.stderr, flush=True)
    return row


def run_cli(method: str, root: str, name: str, dim: int,
            checkpoint: Path | None, params: dict[str, Any],
            device: str = 'cpu') -> dict[str, Any]:
    r"""One ``ltc-pyg cluster`` run in a fresh process; its report."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / 'report.json'
        command = [sys.executable, '-m', 'ltc_pyg.pipelines.cli', 'cluster',
                   '--method', method, '--dim', str(dim),
                   '--features', f'{root}/features/{name}.bin',
                   '--labels', f'{root}/labels/{name}.meta',
                   '--knn', str(knn_path(root, name)),
                   '--out', f'{tmp}/pred.meta', '--report', str(report),
                   '--device', device, '--no-progress']
        if checkpoint is not None:
            command += ['--checkpoint', str(checkpoint)]
        for key, value in params.items():
            command += ['--param', f'{key}={json.dumps(value)}']
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            raise RuntimeError(f'{" ".join(command)} failed:\n'
                               f'{completed.stderr[-2000:]}')
        return json.loads(report.read_text())


#: Stages that read the inputs rather than cluster.
INPUT_STAGES = ('read features', 'normalise features', 'kNN', 'evaluate')


def scale(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    measured: dict[str, list[tuple[int, float]]] = {}
    for root, name in args.data:
        labels = read_labels(f'{root}/labels/{name}.meta')
        num_nodes, num_identities = labels.size, np.unique(labels).size
        for method in unique_methods(args.methods):
            history = measured.setdefault(method, [])
            expected = estimate(history, num_nodes)
            if expected is not None and expected[0] > args.budget:
                rows.append(skipped_row(method, num_nodes, history,
                                        args.budget, *expected))
                continue
            checkpoint = None
            if get_method(method).trainable:
                checkpoint = args.work / f'{method}.pt'
            params = dict(args.params.get(method, {}))
            if method in CLUSTER_COUNT_METHODS:
                params['n_clusters'] = int(num_identities)
            report = run_cli(method, root, name, args.dim, checkpoint, params,
                             args.device)
            stages = [s for s in report['stages']
                      if s['name'] not in INPUT_STAGES]
            clustering = sum(s['seconds'] for s in stages)
            history.append((num_nodes, clustering))
            metrics = report['metrics'] or {}
            row = {'N': num_nodes, 'method': method,
                   'seconds': clustering,
                   'peak RSS (GB)': report['peak_rss_gb'],
                   'pairwise_fscore': metrics.get('pairwise_fscore'),
                   'stages (s / peak GB)': ', '.join(
                       f"{s['name']} {s['seconds']:.1f}/"
                       f"{s['peak_rss_gb']:.1f}" for s in stages)}
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    return rows


def growth(rows: list[dict[str, Any]], targets: list[int]
           ) -> list[dict[str, Any]]:
    r"""Per method, from its two largest measured sets :math:`N_0 < N_1`:
    the time exponent :math:`a = \log(t_1/t_0) / \log(N_1/N_0)`, the
    memory model :math:`M(N) = M_0 + b (N - N_0)` with :math:`b` the bytes
    per node between the two peaks, the pairwise-F change from
    :math:`N_0` to :math:`N_1`, and at each target size the extrapolated
    time :math:`t_1 (N/N_1)^a` and peak RSS :math:`M(N)`."""
    table = []
    for method in dict.fromkeys(row['method'] for row in rows):
        runs = sorted((row for row in rows
                       if row['method'] == method and row['seconds']),
                      key=lambda row: row['N'])
        if len(runs) < 2:
            continue
        r0, r1 = runs[-2:]
        n0, n1 = r0['N'], r1['N']
        exponent = math.log(r1['seconds'] / r0['seconds']) / math.log(n1 / n0)
        per_node = (r1['peak RSS (GB)'] - r0['peak RSS (GB)']) * 1e9 / (
            n1 - n0)
        row = {'method': method, 'sizes': f'{n0:,} -> {n1:,}',
               'time exponent': exponent, 'bytes / node': per_node,
               'pairwise F change': (None if r0['pairwise_fscore'] is None
                                     else r1['pairwise_fscore']
                                     - r0['pairwise_fscore'])}
        for target in targets:
            label = f'{target / 1e6:.2f}M'
            row[f's at {label}'] = r1['seconds'] * (target / n1)**exponent
            row[f'GB at {label}'] = (r1['peak RSS (GB)']
                                     + per_node * (target - n1) / 1e9)
        table.append(row)
    return table


def estimate(history: list[tuple[int, float]], num_nodes: int
             ) -> tuple[float, float] | None:
    r"""The expected seconds at ``num_nodes`` and the exponent ``a`` of
    ``t ~ N^a`` fitted on the last two measurements (at least 1; 1 with
    one measurement), or ``None`` without any."""
    if not history:
        return None
    exponent = 1.0
    if len(history) > 1:
        (n0, t0), (n1, t1) = history[-2:]
        if t0 > 0 and t1 > 0:
            exponent = max(1.0, math.log(t1 / t0) / math.log(n1 / n0))
    n1, t1 = history[-1]
    return t1 * (num_nodes / n1)**exponent, exponent


def skipped_row(method: str, num_nodes: int,
                history: list[tuple[int, float]], budget: float,
                expected: float, exponent: float) -> dict[str, Any]:
    r"""A row for a method not run at ``num_nodes`` because its expected
    time there exceeds the budget."""
    measured = ', '.join(f'{t:.0f} s at {n:,}' for n, t in history)
    return {'N': num_nodes, 'method': method, 'seconds': None,
            'peak RSS (GB)': None, 'pairwise_fscore': None,
            'stages (s / peak GB)': f'not run: measured {measured}; expected '
            f'{expected:,.0f} s here (t ~ N^{exponent:.1f}) > the '
            f'{budget:.0f} s budget'}


def add_transfer_arguments(parser: argparse.ArgumentParser) -> None:
    r"""The arguments of a train-on-one-set, cluster-another benchmark:
    ``--train`` / ``--test ROOT NAME``, ``--dim``, ``--knn-dir``,
    ``--config`` (YAML: method name -> params, the training budgets),
    ``--work`` (checkpoints), ``--seed`` and ``--retrain``."""
    parser.add_argument('--train', nargs=2, metavar=('ROOT', 'NAME'),
                        required=True)
    parser.add_argument('--test', nargs=2, metavar=('ROOT', 'NAME'),
                        required=True)
    parser.add_argument('--dim', type=int, required=True)
    parser.add_argument('--knn-dir', type=Path, help='folder of the kNN '
                        'files (NAME/faiss_k_80.npz; default ROOT/knns)')
    parser.add_argument('--config', type=Path, required=True,
                        help='YAML: method name -> params (training budgets)')
    parser.add_argument('--work', type=Path, required=True,
                        help='checkpoints of the learned methods')
    parser.add_argument('--seed', type=int, default=0,
                        help='training seed')
    parser.add_argument('--retrain', action='store_true', help='train even '
                        'where --work holds a checkpoint of the same params '
                        'and seed')


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    q = commands.add_parser('quality')
    add_transfer_arguments(q)
    q.add_argument('--methods', nargs='+', metavar='NAME')
    s = commands.add_parser('scale')
    s.add_argument('--data', nargs=2, metavar=('ROOT', 'NAME'),
                   action='append', required=True,
                   help='a set with a cached kNN (repeatable, small first)')
    s.add_argument('--budget', type=float, default=1800.0,
                   help='a method whose expected time on a set exceeds this '
                   'many seconds is not run there')
    s.add_argument('--config', type=Path,
                   help='YAML: method name -> params for the runs')
    s.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    s.add_argument('--extrapolate', type=int, nargs='+', default=[],
                   metavar='N', help='also print, per method, the growth of '
                   'time and peak RSS between the two largest sets and their '
                   'extrapolation to these sizes (e.g. 5210000)')
    s.add_argument('--dim', type=int, required=True)
    s.add_argument('--methods', nargs='+', metavar='NAME')
    s.add_argument('--work', type=Path, required=True,
                   help='checkpoints of the learned methods')
    s.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == 'quality':
        rows = quality(args)
        print(format_table(rows, QUALITY_COLUMNS))
    else:
        args.params = (yaml.safe_load(args.config.read_text())
                       if args.config else {}) or {}
        rows = scale(args)
        print(format_table(rows, ['N', 'method', 'seconds', 'peak RSS (GB)',
                                  'pairwise_fscore', 'stages (s / peak GB)']))
        if args.extrapolate:
            table = growth(rows, args.extrapolate)
            print()
            print(format_table(table, list(table[0]) if table else
                               ['method'], '{:,.3f}'))
    return rows


if __name__ == '__main__':
    main()
