r"""``ltc-pyg``: the command line, the only argparse entry point.

Sub-commands::

    ltc-pyg methods   the methods, trainable or not, their parameters
    ltc-pyg knn       features -> kNN file in the original .npz layout
    ltc-pyg evaluate  true + predicted .meta -> pairwise F, BCubed F, NMI
    ltc-pyg train     --method NAME (or NAME): features + labels -> checkpoint
    ltc-pyg cluster   --method NAME: features -> predicted .meta + report

Several processes: ``torchrun --nproc-per-node R ltc-pyg knn|train|cluster
...`` (gloo on CPU, NCCL with ``--device cuda``; ``--nnodes`` and
``--rdzv-endpoint`` across machines) shards the kNN search, the inference of
``gcn-v``, ``gcn-v+e`` and ``learned-edges`` and the training batches over
the ranks; rank 0 merges, prints and writes the files (see
:mod:`ltc_pyg.distributed`).

Logging: warnings only by default (third-party INFO lines, e.g. faiss'
loader, stay hidden); ``-v`` adds ltc_pyg's progress notes, ``-vv``
everyone's debug output; ``-q`` keeps errors only and hides progress bars.

Bad input exits with code 2 and one line naming the file or flag and the
numbers; an output that would overwrite an input, or that cannot be written,
is refused before any work starts; a command's outputs appear together, only
when it succeeds (see :mod:`ltc_pyg.pipelines.outputs`). Ctrl-C exits 130 and
SIGTERM 143, each with one line and no temporary file left behind. Anything
else is a bug: one line asking to rerun with ``-v`` (or
``LTC_PYG_DEBUG=1``), which show the traceback.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch
import yaml

from ltc_pyg import __version__
from ltc_pyg.config import (
    KNNConfig,
    RunConfig,
    check_seed,
    from_dict,
    load_config,
    to_dict,
)
from ltc_pyg.data.io import read_features, read_labels, write_knn, write_labels
from ltc_pyg.distributed import (
    close_process_group,
    init_from_env,
    is_main_process,
)
from ltc_pyg.graph.knn import (
    KNN_METHODS,
    knn_metadata,
    l2_normalize,
    resolve_knn_method,
)
from ltc_pyg.graph.sharded_knn import sharded_knn_search
from ltc_pyg.metrics import evaluate_known
from ltc_pyg.pipelines.methods import (
    METHODS,
    ClusteringMethod,
    build_method,
    check_device,
    first_sentence,
    get_method,
    parameter_help,
)
from ltc_pyg.pipelines.outputs import Outputs, check_outputs
from ltc_pyg.pipelines.plots import write_report_dir
from ltc_pyg.pipelines.report import (
    StageTimer,
    dumps_json,
    format_table,
    write_json,
)
from ltc_pyg.pipelines.run import (
    build_graph,
    cluster,
    knn_settings,
    make_method,
    threshold_sweep,
    train,
)

logger = logging.getLogger('ltc_pyg')

EPILOG = '''examples:
  ltc-pyg methods                 # every method; ltc-pyg methods gcn-v
  ltc-pyg knn --features data/features/part1_test.bin --dim 256 --k 80 \\
      --method ivf --out data/knns/part1_test/faiss_k_80.npz
  ltc-pyg cluster --method knn-threshold --features F.bin --dim 256 \\
      --labels L.meta --out pred.meta --report report.json
  ltc-pyg evaluate --labels-true L.meta --labels-pred pred.meta --json
'''


class UserError(Exception):
    r"""Bad input from the command line (exit code 2)."""


class Terminated(BaseException):
    r"""SIGTERM, raised in the main thread so that ``finally`` blocks and
    context managers remove temporary files before the exit (code 143)."""


def _add_features_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--features', required=True, type=Path,
                        help='features: .bin (raw float32, needs --dim) or '
                        '.npy, one row per sample')
    parser.add_argument('--dim', type=int,
                        help='feature dimension of a .bin file (e.g. 256)')


def _add_knn_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('kNN graph')
    group.add_argument('--knn', type=Path, help='precomputed kNN file '
                       '(original layout, .npz with key "data"); skips the '
                       'search')
    group.add_argument('--k', type=int, help='neighbours per node, itself '
                       'included (default: 80, or the config\'s knn.k)')
    group.add_argument('--knn-method', choices=KNN_METHODS,
                       help='kNN search: exact flat, approximate '
                       'ivf/hnsw/blocked, or auto = flat up to 200K nodes '
                       'and blocked above (default: auto)')
    group.add_argument('--num-probes', type=int, help='lists probed per '
                       'node by the ivf / blocked search (default: 64 / '
                       '128, or the config\'s knn.num_probes)')
    group.add_argument('--knn-cache', type=Path, help='cache the searched kNN '
                       'here; reused only for the same features, k and '
                       'method')


def _add_method_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--config', type=Path, help='YAML run config '
                        '(method, knn, params, seed, device); flags override')
    parser.add_argument('--threshold', type=float, help='the method\'s '
                        'similarity threshold, whatever its name (threshold, '
                        'tau for gcn-v, ...; see ltc-pyg methods); baselines '
                        'choose one from the data when omitted')
    parser.add_argument('--param', action='append', default=[],
                        metavar='KEY=VALUE', help='set a method parameter '
                        '(repeatable), merged into the config; dotted keys '
                        'reach nested ones, e.g. --param max_size=300 '
                        '--param train.steps=30')
    parser.add_argument('--device', help="torch/faiss device, 'cpu' or "
                        "'cuda' (default: cpu)")
    parser.add_argument('--seed', type=int, help='random seed (default: 0)')
    parser.add_argument('--no-progress', action='store_true',
                        help='hide progress bars')


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='ltc-pyg', epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Learning to cluster face embeddings on kNN affinity '
        'graphs (PyTorch Geometric). Data use the learn-to-cluster layout: '
        'features/<name>.bin, labels/<name>.meta, knns/<name>/faiss_k_<k>.npz.')
    parser.add_argument('--version', action='version',
                        version=f'%(prog)s {__version__}')
    parser.add_argument('-v', '--verbose', action='count', default=0,
                        help='progress notes (-vv: debug output of every '
                        'library)')
    parser.add_argument('-q', '--quiet', action='store_true',
                        help='errors only, no progress bars')
    commands = parser.add_subparsers(dest='command', required=True,
                                     metavar='COMMAND')

    listing = commands.add_parser(
        'methods', help='list the methods and their parameters',
        description='Every registered method: trainable or not, and its '
        'parameters (--param KEY=VALUE or a config\'s params:) with their '
        'defaults; the threshold parameter is marked (--threshold).')
    listing.add_argument('names', nargs='*', metavar='NAME',
                         help='only these methods')

    knn = commands.add_parser(
        'knn', help='build a kNN file (original .npz layout)',
        description='Search each sample\'s k most cosine-similar samples with '
        'faiss and write them as [N, 2, k] = (ids, 1 - similarity), the '
        'layout of the original knns/<name>/faiss_k_<k>.npz.')
    _add_features_args(knn)
    knn.add_argument('--k', type=int, required=True,
                     help='neighbours per node, itself included')
    knn.add_argument('--knn-method', '--method', dest='knn_method',
                     choices=KNN_METHODS, default='auto',
                     help='flat = exact; ivf / hnsw / blocked = approximate '
                     'and fast; blocked is the kNN graph by blocks of '
                     'matrix products; auto = flat up to 200K nodes and '
                     'blocked above (default: auto; --method is the older '
                     'name)')
    knn.add_argument('--num-probes', type=int,
                     help='IVF / blocked lists searched per query '
                     '(default: 64 / 128)')
    knn.add_argument('--ef-search', type=int, default=256,
                     help='HNSW search breadth (default: 256)')
    knn.add_argument('--device', default='cpu', help="'cpu' or 'cuda' "
                     '(ivf needs faiss-gpu; flat and blocked run in torch '
                     'without it)')
    knn.add_argument('--out', required=True, type=Path, help='.npz to write')

    ev = commands.add_parser(
        'evaluate', help='score predicted labels against true labels',
        description='Pairwise precision/recall/F (ordered pairs i != j), '
        'BCubed precision/recall/F and NMI (arithmetic) of a predicted '
        'labeling. Undefined values (e.g. pairwise precision when every '
        'predicted cluster is a singleton) are NaN, or null in --json.')
    ev.add_argument('--labels-true', required=True, type=Path,
                    help='.meta with the true identities')
    ev.add_argument('--labels-pred', required=True, type=Path,
                    help='.meta with the predicted clusters')
    ev.add_argument('--json', action='store_true', help='print JSON')

    names = ', '.join(sorted(METHODS))
    trainable = ', '.join(sorted(name for name in METHODS
                                 if get_method(name).trainable))
    tr = commands.add_parser(
        'train', help='train a learned method',
        description=f'Train a learned method on labelled features and write '
        f'a checkpoint (atomically), with the kNN settings that cluster '
        f'--checkpoint reuses. Methods: {trainable}.')
    tr.add_argument('name', nargs='?', help='method to train (or --method)')
    tr.add_argument('--method', help='method to train, as in cluster')
    _add_features_args(tr)
    tr.add_argument('--labels', required=True, type=Path,
                    help='.meta with the true identities')
    _add_knn_args(tr)
    _add_method_args(tr)
    tr.add_argument('--resume', type=Path, help='continue from this '
                    'checkpoint (ours)')
    tr.add_argument('--out', required=True, type=Path,
                    help='checkpoint to write')

    cl = commands.add_parser(
        'cluster', help='cluster features with a method',
        description=f'Cluster features and write one label per line. '
        f'Methods: {names}.')
    cl.add_argument('--method', help='method name (or the config\'s)')
    _add_features_args(cl)
    cl.add_argument('--labels', type=Path, help='.meta with true identities; '
                    'adds metrics to the report')
    cl.add_argument('--checkpoint', type=Path, help='trained model: ours or '
                    'a released .pth of the original project')
    _add_knn_args(cl)
    _add_method_args(cl)
    cl.add_argument('--out', required=True, type=Path,
                    help='predicted labels (.meta) to write')
    cl.add_argument('--report', type=Path, help='write a report (metrics, '
                    'parameters, time and memory per stage): JSON when PATH '
                    'ends in .json, else a directory with report.json and '
                    'plots (with --labels and a method that is not learned, '
                    'also scores against its threshold)')
    return parser


def _merge(params: dict[str, Any], key: str, value: Any) -> None:
    r"""Sets ``params[key]``, descending into nested dicts at the dots of
    ``key``; dict values merge into the dicts already there."""
    *parents, last = key.split('.')
    for parent in parents:
        params = params.setdefault(parent, {})
        if not isinstance(params, dict):
            raise UserError(f"--param {key}: '{parent}' is not a group of "
                            f'parameters')
    if isinstance(value, dict) and isinstance(params.get(last), dict):
        for name, item in value.items():
            _merge(params[last], name, item)
    else:
        params[last] = value


def _parse_params(pairs: list[str], params: dict[str, Any]
                  ) -> dict[str, Any]:
    r"""``params`` (deep-copied) with the ``--param KEY=VALUE`` pairs
    merged in (YAML values, dotted keys)."""
    params = copy.deepcopy(params)
    for pair in pairs:
        key, sep, value = pair.partition('=')
        if not sep or not key.strip():
            raise UserError(f"--param expects KEY=VALUE (got '{pair}')")
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as error:
            problem = getattr(error, 'problem', None) or 'not valid YAML'
            raise UserError(f"--param '{pair}': the value is not valid YAML "
                            f'({problem})') from None
        _merge(params, key.strip(), value)
    return params


def _check_params(method: str, params: dict[str, Any], source: str) -> None:
    r"""Checks ``params`` against ``method``'s parameter dataclass now, so
    that a bad value fails before any work, naming where it came from."""
    try:
        from_dict(get_method(method).Params, params, f'{method} params')
    except (TypeError, ValueError) as error:
        raise UserError(f'{source}: {error}') from None


def _check_device(device: str, source: str) -> None:
    r"""Checks a device for the CLI: torch's syntax
    (:func:`~ltc_pyg.pipelines.methods.check_device`), ``'cpu'`` or
    ``'cuda[:i]'``, and that GPU present; errors name ``source``."""
    try:
        check_device(device)
    except ValueError as error:
        raise UserError(f'{source}: {error}') from None
    parsed = torch.device(device)
    if parsed.type not in ('cpu', 'cuda'):
        raise UserError(f"{source} '{device}' is not supported; use 'cpu' or "
                        f"'cuda[:i]'")
    if parsed.type == 'cuda':
        count = torch.cuda.device_count()
        if count == 0 or (parsed.index or 0) >= count:
            raise UserError(f"{source} '{device}': this machine has {count} "
                            f'CUDA device(s)')


def _method_name(args: argparse.Namespace) -> str | None:
    r"""``train NAME`` or ``--method NAME``."""
    name = getattr(args, 'name', None)
    if name is not None and args.method is not None and name != args.method:
        raise UserError(f"Two methods given: '{name}' and --method "
                        f"'{args.method}'")
    return name or args.method


def _run_config(args: argparse.Namespace) -> tuple[RunConfig,
                                                    dict[str, Any]]:
    r"""Merges ``--config`` with the flags (flags win).

    Returns:
        The run config, and the kNN settings set explicitly (by the config
        file's ``knn:`` or ``--k`` / ``--knn-method``), which a checkpoint's
        must not contradict.
    """
    config = load_config(args.config) if args.config else None
    method = _method_name(args)
    if method is None:
        if config is None:
            raise UserError('--method is required (or a --config naming one)')
        method = config.method
    elif config is not None and config.method != method:
        raise UserError(f"{args.config} is for '{config.method}', not "
                        f"'{method}'")
    get_method(method)  # fails early on unknown names
    defaults = to_dict(KNNConfig())
    requested = {key: value for key, value in to_dict(config.knn).items()
                 if value != defaults[key]} if config else {}
    flags = {'k': args.k, 'method': args.knn_method,
             'num_probes': args.num_probes}
    requested.update({key: value for key, value in flags.items()
                      if value is not None})
    if args.knn is not None and args.knn_method is not None:
        raise UserError(f'--knn-method chooses a search, but --knn '
                        f'{args.knn} skips it; give one of them')
    if args.knn is not None and args.knn_cache is not None:
        raise UserError(f'--knn {args.knn} is read, not searched; '
                        f'--knn-cache {args.knn_cache} would never be used')
    if config is not None:
        _check_params(method, config.params, str(args.config))
    params = _parse_params(args.param, config.params if config else {})
    if args.param:
        _check_params(method, params, '--param')
    try:
        knn = KNNConfig(**{**defaults, **requested})
    except ValueError as error:
        raise UserError(f'--k / --num-probes / knn: {error}') from None
    if args.seed is not None:
        check_seed(args.seed, '--seed')
    device = args.device or (config.device if config else 'cpu')
    _check_device(device, f'{args.config}: device'
                  if config and not args.device else '--device')
    run = RunConfig(
        method=method, knn=knn, params=params,
        seed=args.seed if args.seed is not None else (config.seed if config
                                                      else 0),
        device=init_from_env(device))
    return run, requested


def _set_threshold(method: ClusteringMethod, threshold: float | None
                   ) -> None:
    r"""Applies ``--threshold`` to the method's own threshold parameter."""
    if threshold is None:
        return
    name = method.threshold_name
    if name is None:
        raise UserError(f"'{method.name}' has no similarity threshold "
                        f'(see ltc-pyg methods {method.name}); set its '
                        f'parameters with --param KEY=VALUE')
    try:
        method.params = dataclasses.replace(method.params,
                                            **{name: threshold})
    except ValueError as error:
        raise UserError(f'--threshold {threshold}: {error}') from None


def _read_inputs(args: argparse.Namespace, timer: StageTimer,
                 labels_path: Path | None, check: bool = True
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    with timer('read features'):
        features = read_features(args.features, args.dim, check=check)
        labels = (read_labels(labels_path, num_nodes=features.shape[0])
                  if labels_path else None)
    return features, labels


def _knn(args: argparse.Namespace) -> None:
    for flag, value in (('--k', args.k), ('--num-probes', args.num_probes),
                        ('--ef-search', args.ef_search)):
        if value is not None and value < 1:
            raise UserError(f'{flag} must be at least 1 (got {value})')
    _check_device(args.device, '--device')
    device = init_from_env(args.device)
    with Outputs({'--features': args.features}, {'--out': args.out}) as out:
        x = l2_normalize(read_features(args.features, args.dim))
        knn = sharded_knn_search(x, args.k, args.knn_method, device=device,
                                 num_probes=args.num_probes,
                                 ef_search=args.ef_search, normalize=False)
        if not is_main_process():
            return
        with out.stage('--out') as path:
            # The metadata of a kNN cache: build_graph reuses the file.
            write_knn(path, knn, **knn_metadata(
                x, args.k, resolve_knn_method(args.knn_method, x.shape[0])))
        out.commit()
    logger.info('Wrote %s: %d x %d neighbours', args.out, *knn.neighbor.shape)


def _note_unknown(num_unknown: int, num_nodes: int, path: Path) -> None:
    if num_unknown:
        print(f'note: {num_unknown} of {num_nodes} samples have label -1 '
              f'(unknown) in {path}; they are left out of the scores',
              file=sys.stderr)


def _evaluate(args: argparse.Namespace) -> None:
    labels_true = read_labels(args.labels_true)
    labels_pred = read_labels(args.labels_pred)
    if labels_true.size != labels_pred.size:
        raise UserError(f'{args.labels_true} has {labels_true.size} labels '
                        f'but {args.labels_pred} has {labels_pred.size}')
    metrics, num_unknown = evaluate_known(labels_true, labels_pred)
    _note_unknown(num_unknown, labels_true.size, args.labels_true)
    if args.json:
        print(dumps_json(metrics))
    else:
        print(format_table([metrics], list(metrics)))


def _inputs(args: argparse.Namespace) -> dict[str, Path | None]:
    r"""The input files of ``train`` / ``cluster``, by flag."""
    return {'--features': args.features, '--labels': args.labels,
            '--knn': args.knn, '--config': args.config,
            '--checkpoint': getattr(args, 'checkpoint', None),
            '--resume': getattr(args, 'resume', None)}


def _progress(args: argparse.Namespace) -> bool | None:
    return False if args.no_progress or args.quiet else None


def _train(args: argparse.Namespace) -> None:
    config, requested = _run_config(args)
    # The checkpoint is saved as training goes (train.save_every), so it is
    # not staged; continuing a run in place (--resume X --out X) is allowed.
    check_outputs(_inputs(args), {'--out': args.out,
                                  '--knn-cache': args.knn_cache},
                  allowed={('--out', '--resume')})
    params = config.params
    if args.threshold is not None:
        method = build_method(config.method, params, device=config.device)
        _set_threshold(method, args.threshold)
        params = to_dict(method.params)
    timer = StageTimer()
    features, labels = _read_inputs(args, timer, args.labels)
    progress = _progress(args)
    graph = build_graph(features, config.knn if requested or not args.knn
                        else None, labels, knn_path=args.knn,
                        cache_path=args.knn_cache, device=config.device,
                        timer=timer, progress_bar=progress)
    train(graph, config.method, params, out=args.out, knn=config.knn,
          device=config.device, seed=config.seed, resume=args.resume,
          progress_bar=progress, timer=timer)
    if not is_main_process():
        return
    print(format_table([{'stage': s.name, 'seconds': s.seconds,
                         'peak RSS (GB)': s.peak_rss_gb}
                        for s in timer.stages],
                       ['stage', 'seconds', 'peak RSS (GB)'], '{:.2f}'))


def _cluster(args: argparse.Namespace) -> None:
    config, requested = _run_config(args)
    report_dir = args.report is not None and args.report.suffix != '.json'
    with Outputs(_inputs(args), {'--out': args.out, '--report': args.report,
                                 '--knn-cache': args.knn_cache},
                 directories={'--report'} if report_dir else set()) as out:
        timer = StageTimer()
        progress = _progress(args)
        method = make_method(config.method, config.params or None,
                             checkpoint=args.checkpoint,
                             device=config.device, seed=config.seed,
                             progress_bar=progress)
        _set_threshold(method, args.threshold)
        try:  # before minutes of reading and kNN search
            method.check_ready()
        except ValueError as error:
            where = (f' (model: --checkpoint {args.checkpoint})'
                     if args.checkpoint else '')
            raise UserError(f'{error}{where}') from None
        # A method that clusters a given kNN file's rows alone never reads
        # the features: only their row count is checked.
        keep_features = method.reads_features or args.knn is None
        features, labels = _read_inputs(args, timer, args.labels,
                                        check=keep_features)
        try:
            knn = knn_settings(method, requested)
        except ValueError as error:
            raise UserError(f'{args.checkpoint}: {error}') from None
        # A --knn file keeps its own k unless one was asked for or trained
        # on.
        fixed_k = bool(requested) or method.trained_knn is not None
        graph = build_graph(features, knn if fixed_k or not args.knn
                            else None, labels, knn_path=args.knn,
                            cache_path=args.knn_cache, device=config.device,
                            timer=timer, progress_bar=progress,
                            keep_features=keep_features)
        # The graph holds its own unit-norm copy: unmapping the file's pages
        # frees 1 KB per node (D = 256) for the rest of the run.
        del features
        try:
            result = cluster(graph, method, timer, knn)
        except ValueError as error:  # e.g. a model of another embedding
            if args.checkpoint is None:
                raise
            raise ValueError(f'{error} (model: --checkpoint '
                             f'{args.checkpoint})') from None
        if not is_main_process():  # rank 0 writes the files
            return
        sweep = None
        if report_dir and labels is not None and not method.trainable:
            # Learned methods would re-run their model per value: API only.
            with timer('threshold sweep'):
                sweep = threshold_sweep(graph, method, progress_bar=progress)
        with timer('write'), out.stage('--out') as path:
            write_labels(path, result.labels)
        # The totals cover every stage of the command, the sweep included.
        report = {**result.report, **timer.as_dict()}
        if args.report:
            with out.stage('--report') as path:
                if report_dir:
                    write_report_dir(path, report, result.labels, labels,
                                     sweep=sweep)
                else:
                    write_json(path, report)
        out.commit()
    if labels is not None:
        _note_unknown(report['num_unknown_labels'], report['num_nodes'],
                      args.labels)
    print(f"{report['method']}: {report['num_clusters']} clusters of "
          f"{report['num_nodes']} samples in {report['total_seconds']:.1f} s "
          f"(peak RSS {report['peak_rss_gb']:.2f} GB) -> {args.out}")
    if report['metrics']:
        print(format_table([report['metrics']], list(report['metrics'])))


def _methods(args: argparse.Namespace) -> None:
    names = args.names or sorted(METHODS)
    for name in names:
        cls = get_method(name)
        defaults = to_dict(cls.Params())
        threshold = build_method(name).threshold_name
        meaning = parameter_help(cls.Params)
        kind = 'trainable' if cls.trainable else 'not trained'
        print(f'{name} ({kind}): {first_sentence(cls.__doc__ or "")}')
        for key, value in defaults.items():
            mark = ' [--threshold]' if key == threshold else ''
            shown = repr(value)
            if len(shown) > 40 and len(names) > 1:
                shown = shown[:36] + ' ...'
            print(f'    {key} = {shown}{mark}: {meaning.get(key, "")}')
        if len(names) > 1:
            print()


def _configure_logging(args: argparse.Namespace) -> None:
    r"""Warnings by default; ``-v`` adds ltc_pyg's INFO notes, ``-vv``
    every library's debug output; ``-q`` errors only."""
    logging.basicConfig(level=logging.DEBUG if args.verbose > 1
                        else logging.WARNING,
                        format='%(levelname)s %(name)s: %(message)s',
                        stream=sys.stderr)
    logger.setLevel(logging.ERROR if args.quiet else
                    logging.WARNING if args.verbose == 0 else
                    logging.INFO if args.verbose == 1 else logging.DEBUG)
    logging.captureWarnings(True)


COMMANDS = {'methods': _methods, 'knn': _knn, 'evaluate': _evaluate,
            'train': _train, 'cluster': _cluster}


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def _one_line(error: BaseException) -> str:
    r"""The first line of an error's message; for an :class:`OSError` from
    the system, its reason and file (``No space left on device: x.npz``)."""
    if isinstance(error, OSError) and error.strerror:
        message = error.strerror
        if error.filename is not None:
            message += f': {error.filename}'
    else:
        message = str(error) or type(error).__name__
    return message.splitlines()[0]


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    _configure_logging(args)
    debug = args.verbose > 0 or os.environ.get('LTC_PYG_DEBUG', '') not in (
        '', '0')
    prefix = f'ltc-pyg {args.command}'
    # Signal handlers can only be set from the main thread.
    previous = (signal.signal(signal.SIGTERM, _terminate)
                if threading.current_thread() is threading.main_thread()
                else None)
    try:
        COMMANDS[args.command](args)
    except (UserError, ValueError, TypeError, OSError) as error:
        if args.verbose > 1:
            raise
        print(f'{prefix}: error: {_one_line(error)}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f'{prefix}: interrupted', file=sys.stderr)
        return 130
    except Terminated:
        print(f'{prefix}: terminated', file=sys.stderr)
        return 143
    except Exception as error:
        if debug:
            raise
        print(f'{prefix}: internal error: {type(error).__name__}: '
              f'{_one_line(error)} (a bug; rerun with -v or LTC_PYG_DEBUG=1 '
              f'for the traceback)', file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        close_process_group()
    return 0


if __name__ == '__main__':
    sys.exit(main())
