r"""MS-Celeb-1M part1_test: the results table of the original learn-to-cluster
README, for every method registered in ``ltc_pyg``.

With the data in the original layout::

    DATA_ROOT/features/part1_test.bin         584,013 x 256 float32
    DATA_ROOT/labels/part1_test.meta          identities (for the metrics)
    DATA_ROOT/knns/part1_test/faiss_k_80.npz  optional; searched and cached
    DATA_ROOT/features/part0_train.bin        optional, with its labels: to
    DATA_ROOT/labels/part0_train.meta         train learned methods

run::

    python examples/ms1m_part1.py --data-root DATA_ROOT \
        --checkpoint gcn-v=pretrained/gcn_v.pth --report report/

Learned methods use ``--checkpoint NAME=PATH`` (ours, or the original model
zoo's ``.pth``) or are trained on part0_train when it is present; otherwise
they are skipped.

Without the data the same pipeline runs on a generated MS1M-like set (long
tailed identities, hard negatives, low-quality samples; train and test
identities disjoint) sized for a laptop CPU, and learned methods are trained
on its train split with a short schedule. Methods that take minutes there
(:data:`SLOW`: L-GCN, mean-shift) run only with ``--all``; the
output names every method it did not run and why. Baselines read their
thresholds and cluster counts from the data. The synthetic numbers show
the flow and the relative order of methods, not MS1M's.
"""
from __future__ import annotations

import argparse
import copy
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from torch_geometric.data import Data

from ltc_pyg.config import KNNConfig
from ltc_pyg.data.io import read_features, read_labels
from ltc_pyg.data.synthetic import make_splits
from ltc_pyg.graph.knn import KNN_METHODS
from ltc_pyg.pipelines.methods import METHODS, get_method
from ltc_pyg.pipelines.plots import plot_method_bars, write_report_dir
from ltc_pyg.pipelines.report import StageTimer, format_table, write_json
from ltc_pyg.pipelines.run import (
    build_graph,
    cluster,
    make_method,
    threshold_sweep,
    train,
)

logger = logging.getLogger('ms1m_part1')

#: 100 Adam steps: the paper's SGD schedule (lr 0.1) learns the confidence
#: far worse on synthetic features (see benchmarks/configs/synthetic.yaml).
ADAM = {'steps': 100, 'optimizer': 'adam', 'lr': 1e-3, 'milestones': []}

#: Short training schedules for the synthetic fallback (methods not named
#: here run with their defaults; similarity thresholds are read from the
#: training split). Full MS1M schedules live in configs/.
SYNTHETIC_PARAMS: dict[str, dict[str, Any]] = {
    'gcn-v': {'train': ADAM},
    'gcn-v+e': {'gcn_v': {'train': ADAM}, 'train': ADAM},
    'gcn-d+s': {'train': {'epochs': 30}},
    'lgcn': {'train': {'epochs': 1}},
}

#: Methods left out of the default run for their time on the synthetic
#: set (one thread, 2 shared cores; measured 2026-12-01): run them with
#: --all or name them in --methods.
SLOW: dict[str, str] = {
    'lgcn': 'training alone took 534 s (one epoch over 7,044 pivot '
            'subgraphs)',
    'meanshift': '97 s, and one cluster at the bandwidth read from the '
                 'data (pairwise F 0.02)',
}

#: Learned methods built on another one: (base, the parameter naming its
#: checkpoint). The base trained (or given) in the same run is reused
#: instead of being trained again.
BUILDS_ON = {'gcn-v+e': ('gcn-v', 'gcn_v_checkpoint'),
             'gcn-d+s': ('gcn-d', 'gcn_d_checkpoint')}

#: The stages of :func:`~ltc_pyg.pipelines.run.train`: the schedule, then
#: the threshold chosen on the training split.
TRAIN_STAGES = ('train', 'threshold on the training split')

COLUMNS = ['method', 'pairwise_precision', 'pairwise_recall',
           'pairwise_fscore', 'bcubed_precision', 'bcubed_recall',
           'bcubed_fscore', 'nmi', 'clusters', 'seconds', 'train seconds',
           'peak RSS (GB)']


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data-root', type=Path, default=Path('data'),
                        help='folder in the original layout (default: data)')
    parser.add_argument('--name', default='part1_test',
                        help='test set name (default: part1_test)')
    parser.add_argument('--train-name', default='part0_train',
                        help='train set name (default: part0_train)')
    parser.add_argument('--dim', type=int, default=256,
                        help='feature dimension of the .bin files')
    parser.add_argument('--methods', nargs='+', metavar='NAME',
                        help=f'methods to run (default: all registered but '
                        f'the slow ones: {", ".join(METHODS)})')
    parser.add_argument('--all', action='store_true', help=f'also run the '
                        f'slow methods ({", ".join(SLOW)})')
    parser.add_argument('--checkpoint', action='append', default=[],
                        metavar='NAME=PATH', help='trained model of a '
                        'learned method (repeatable)')
    parser.add_argument('--param', action='append', default=[],
                        metavar='NAME:KEY=VALUE', help='set a parameter of '
                        'one method (repeatable), e.g. knn-threshold:'
                        'threshold=0.7; nested keys with dots')
    parser.add_argument('--k', type=int, default=80,
                        help='kNN row length, itself included (default: 80)')
    parser.add_argument('--knn-method', choices=KNN_METHODS, default='flat',
                        help='kNN search when no kNN file is cached')
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--sweep', choices=['cheap', 'all', 'none'],
                        default='cheap', help='threshold sweeps in the '
                        'report: methods that are not learned (cheap), all, '
                        'or none')
    parser.add_argument('--report', type=Path, help='write report.json, '
                        'methods.png and one folder of plots per method here')
    group = parser.add_argument_group('synthetic fallback (no data found)')
    group.add_argument('--num-identities', type=int, default=150,
                       help='identities per split (default: 150)')
    group.add_argument('--mean-size', type=float, default=50.0,
                       help='mean samples per identity (default: 50)')
    group.add_argument('--synthetic-dim', type=int, default=256,
                       help='feature dimension (default: 256)')
    parser.add_argument('--no-progress', action='store_true',
                        help='hide progress bars')
    parser.add_argument('-q', '--quiet', action='store_true',
                        help='only warnings and the table')
    return parser.parse_args(argv)


def _set_nested(params: dict[str, Any], key: str, value: Any) -> None:
    *parents, last = key.split('.')
    for parent in parents:
        params = params.setdefault(parent, {})
    params[last] = value


def method_params(args: argparse.Namespace, synthetic: bool
                  ) -> dict[str, dict[str, Any]]:
    r"""Per-method parameter overrides: the synthetic schedules, then
    ``--param``."""
    params = {name: copy.deepcopy(SYNTHETIC_PARAMS.get(name, {}))
              if synthetic else {} for name in METHODS}
    for item in args.param:
        name, sep, assignment = item.partition(':')
        key, eq, value = assignment.partition('=')
        if not sep or not eq or name not in METHODS:
            raise ValueError(f"--param expects NAME:KEY=VALUE with a "
                             f"registered NAME (got '{item}')")
        _set_nested(params[name], key, yaml.safe_load(value))
    return params


def method_names(args: argparse.Namespace
                 ) -> tuple[list[str], dict[str, str]]:
    r"""The methods to run, and why each other registered one is not:
    aliases of one class run once, slow ones only when asked for."""
    names = args.methods or list(METHODS)
    for name in names:
        get_method(name)
    skipped = {}
    seen: dict[str, str] = {}
    for name in names:
        if METHODS[name] in seen.values():
            alias = next(k for k, v in seen.items() if v == METHODS[name])
            skipped[name] = f"the same method as '{alias}'"
        else:
            seen[name] = METHODS[name]
    if not args.methods and not args.all:
        for name, why in SLOW.items():
            del seen[name]
            skipped[name] = f'slow, {why}; add --all or --methods {name}'
    return list(seen), skipped


def load_graphs(args: argparse.Namespace, knn: KNNConfig, progress: bool |
                None) -> tuple[Data, Data | None, str, bool]:
    r"""The test graph, the train graph (or ``None``), a description of
    the data and whether it is the synthetic fallback."""
    root = args.data_root
    features = root / 'features' / f'{args.name}.bin'
    if features.is_file():
        graphs = []
        for name in (args.name, args.train_name):
            path = root / 'features' / f'{name}.bin'
            labels_path = root / 'labels' / f'{name}.meta'
            if name == args.train_name and not (path.is_file() and
                                                labels_path.is_file()):
                graphs.append(None)
                continue
            x = read_features(path, args.dim)
            labels = (read_labels(labels_path, num_nodes=x.shape[0])
                      if labels_path.is_file() else None)
            logger.info('%s: %d x %d features%s', name, *x.shape,
                        '' if labels is not None else ' (no labels)')
            cache = root / 'knns' / name / f'faiss_k_{knn.k}.npz'
            graphs.append(build_graph(x, knn, labels, cache_path=cache,
                                      device=args.device,
                                      progress_bar=progress))
        return graphs[0], graphs[1], f'{args.name} ({root})', False
    logger.warning('No MS-Celeb-1M data at %s (expected %s); running the '
                   'same pipeline on a generated MS1M-like set instead',
                   root, features)
    splits = make_splits(num_train_identities=args.num_identities,
                         num_test_identities=args.num_identities,
                         dim=args.synthetic_dim, mean_size=args.mean_size,
                         seed=args.seed)
    test, train = (build_graph(splits[s].x, knn, splits[s].labels,
                               device=args.device, progress_bar=progress)
                   for s in ('test', 'train'))
    description = (f'synthetic MS1M-like test split: {test.num_nodes:,} '
                   f'samples of {args.num_identities} identities, '
                   f'{args.synthetic_dim}-d')
    return test, train, description, True


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    r"""Runs every method and prints the table.

    Returns:
        dict: Per method, its row: the metrics of
        :func:`~ltc_pyg.metrics.evaluate`, ``clusters``, ``seconds``
        (clustering; kNN search, training and metrics excluded), ``train
        seconds`` (learned methods trained here) and ``peak RSS (GB)``.
    """
    start = time.perf_counter()
    args = parse_args(argv)
    # Other libraries (faiss' loader, ...) keep to warnings.
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s '
                        '%(name)s: %(message)s', stream=sys.stderr)
    for name in ('ltc_pyg', logger.name):
        logging.getLogger(name).setLevel(logging.WARNING if args.quiet
                                         else logging.INFO)
    progress = False if args.no_progress else None
    checkpoints = dict(item.split('=', 1) for item in args.checkpoint)
    knn = KNNConfig(k=args.k, method=args.knn_method)
    names, skipped = method_names(args)
    test, train_graph, description, synthetic = load_graphs(args, knn,
                                                            progress)
    params = method_params(args, synthetic)
    labels_true = test.y.numpy() if 'y' in test else None

    work = tempfile.TemporaryDirectory(prefix='ms1m_part1_')
    trained = dict(checkpoints)  # method -> checkpoint, for BUILDS_ON
    rows: dict[str, dict[str, Any]] = {}
    for name in names:
        options = dict(device=args.device, seed=args.seed,
                       progress_bar=progress)
        trainable = get_method(name).trainable
        timer = StageTimer()
        if trainable and name not in checkpoints:
            if train_graph is None:
                skipped[name] = (f'learned, and neither --checkpoint '
                                 f'{name}=PATH nor {args.train_name} data '
                                 f'given')
                continue
            base, key = BUILDS_ON.get(name, (None, None))
            if base in trained and key not in params[name]:
                logger.info("'%s' reuses the '%s' model", name, base)
                params[name][key] = trained[base]
            logger.info("Training '%s' on %d samples", name,
                        train_graph.num_nodes)
            trained[name] = str(Path(work.name) / f'{name}.pt')
            method = train(train_graph, name, params[name] or None,
                           out=trained[name], knn=knn, timer=timer,
                           **options)
        else:
            method = make_method(name, params[name] or None,
                                 checkpoints.get(name), **options)
        result = cluster(test, method)
        labels, report = result.labels, result.report
        rows[name] = {'method': name, **(report['metrics'] or {}),
                      'clusters': report['num_clusters'],
                      'seconds': sum(stage['seconds'] for stage in
                                     report['stages']
                                     if stage['name'] != 'evaluate'),
                      'train seconds': sum(stage.seconds for stage in
                                           timer.stages
                                           if stage.name in TRAIN_STAGES)
                      if trainable and timer.stages else None,
                      'peak RSS (GB)': max(report['peak_rss_gb'],
                                           timer.peak_rss_gb)}
        if args.report:
            sweep = None
            if labels_true is not None and (
                    args.sweep == 'all' or
                    (args.sweep == 'cheap' and not trainable)):
                sweep = threshold_sweep(test, method, progress_bar=progress)
            write_report_dir(args.report / name, report, labels,
                             labels_true, sweep=sweep)

    work.cleanup()
    print(f'\nResults on {description}:')
    print(format_table(list(rows.values()), COLUMNS))
    for name, why in skipped.items():
        print(f'Not run: {name} ({why})')
    print(f'Total: {time.perf_counter() - start:.0f} s')
    if args.report and rows:
        write_json(args.report / 'report.json',
                   {'data': description, 'methods': list(rows.values())})
        if labels_true is not None:
            plot_method_bars(args.report / 'methods.png',
                             list(rows.values()),
                             title=f'Methods on {description}')
        print(f'Report: {args.report}')
    return rows


if __name__ == '__main__':
    main()
