r"""Bad input through the CLI: every case exits with the expected code and
one line naming the file or flag, and leaves no output and no temporary
file behind; inputs are never modified.

Cases run through :func:`main` in-process (fast); the ones about exit codes
of signals, resource limits and the console entry run in a subprocess.
"""
import datetime
import errno
import gc
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ltc_pyg.data.io import (
    atomic_write,
    read_knn,
    read_labels,
    write_features,
    write_knn,
    write_labels,
)
from ltc_pyg.data.synthetic import make_splits
from ltc_pyg.graph.knn import knn_search
from ltc_pyg.metrics import evaluate
from ltc_pyg.pipelines import cli
from ltc_pyg.pipelines.cli import main

DIM = 16


def _npz(path: Path, **arrays) -> Path:
    with open(path, 'wb') as f:
        np.savez(f, **arrays)
    return path


@pytest.fixture(scope='module')
def d(tmp_path_factory) -> SimpleNamespace:
    r"""Inputs shared by every case (never written by a case)."""
    root = tmp_path_factory.mktemp('inputs')
    split = make_splits(num_train_identities=1, num_test_identities=6,
                        dim=DIM, mean_size=6, spread=0.5,
                        low_quality_fraction=0.0, seed=0)['test']
    n = len(split.labels)
    x = split.x.astype(np.float32)
    ns = SimpleNamespace(root=root, n=n, x=x, labels_array=split.labels)
    ns.features = root / 'features.bin'
    write_features(ns.features, x)
    ns.npy = root / 'features.npy'
    np.save(ns.npy, x)
    ns.labels = root / 'labels.meta'
    write_labels(ns.labels, split.labels)
    ns.short_labels = root / 'short.meta'
    write_labels(ns.short_labels, np.array([0, 1, 2]))
    knn = knn_search(x, 5)
    ns.knn = root / 'knn.npz'
    write_knn(ns.knn, knn)
    data = np.load(ns.knn)['data']

    def bad_knn(name: str, array: np.ndarray) -> Path:
        return _npz(root / f'{name}.npz', data=array)

    distance = data[:, 1]
    ns.knn_int = bad_knn('int', data.astype(np.int64))
    ns.knn_nan = bad_knn('nan', np.stack([data[:, 0], np.where(
        np.arange(5) == 2, np.nan, distance)], 1))
    ns.knn_far = bad_knn('far', np.stack([data[:, 0], distance + 5.0], 1))
    ns.knn_sim = bad_knn('sim', np.stack([data[:, 0], 1.0 - distance], 1))
    ns.knn_notself = bad_knn('notself', np.stack(
        [np.roll(data[:, 0], 1, axis=0), distance], 1))
    ns.knn_k0 = bad_knn('k0', np.zeros((n, 2, 0)))
    ns.knn_str = bad_knn('str', data.astype(str))
    ns.knn_rows = bad_knn('rows', data[:-1])
    ids_out = data.copy()
    ids_out[0, 0, 1] = n + 7
    ns.knn_ids = bad_knn('ids', ids_out)
    ids_frac = data.copy()
    ids_frac[0, 0, 1] += 0.5
    ns.knn_frac = bad_knn('frac', ids_frac)
    ns.knn_nodata = _npz(root / 'nodata.npz', other=data)
    ns.knn_object = _npz(root / 'object.npz',
                         data=np.array([{'a': 1}], dtype=object))
    ns.knn_truncated = root / 'truncated.npz'
    ns.knn_truncated.write_bytes(ns.knn.read_bytes()[:200])
    ns.knn_dir = root / 'knn_dir.npz'
    ns.knn_dir.mkdir()

    ns.float64 = root / 'float64.bin'
    x.astype(np.float64).tofile(ns.float64)
    ns.object_npy = root / 'object.npy'
    np.save(ns.object_npy, np.array([[{'a': 1}]], dtype=object))
    ns.truncated_npy = root / 'truncated.npy'
    ns.truncated_npy.write_bytes(ns.npy.read_bytes()[:300])
    ns.string_npy = root / 'string.npy'
    np.save(ns.string_npy, x.astype(str))
    ns.vector_npy = root / 'vector.npy'
    np.save(ns.vector_npy, x[0])
    ns.garbage_npy = root / 'garbage.npy'
    ns.garbage_npy.write_bytes(b'not numpy at all\n' * 8)
    ns.nan_features = root / 'nan.bin'
    with_nan = x.copy()
    with_nan[3, 1] = np.nan
    with_nan.tofile(ns.nan_features)
    ns.zero_features = root / 'zero.bin'
    zero = x.copy()
    zero[4] = 0
    zero.tofile(ns.zero_features)
    ns.empty = root / 'empty.bin'
    ns.empty.touch()
    ns.feature_dir = root / 'feature_dir.bin'
    ns.feature_dir.mkdir()

    texts = {
        'meta_word': ('word.meta', '0\n1\nabc\n'),
        'meta_huge': ('huge.meta', '0\n9223372036854775808\n1\n'),
        'meta_float': ('float.meta', '0\n1.5\n'),
        'meta_blank': ('blank.meta', '0\n\n1\n'),
        'meta_empty': ('empty.meta', ''),
        'meta_unknown': ('unknown.meta', '-1\n' * n),
        'yaml_bad': ('bad.yaml', 'method: knn-threshold\nparams: {a: [1,\n'),
        'yaml_key': ('key.yaml', 'method: knn-threshold\n'
                     'params: {thresold: 0.5}\n'),
        'yaml_probes': ('probes.yaml', 'method: knn-threshold\n'
                        'knn: {method: ivf, num_probes: 0}\n'),
        'yaml_list': ('list.yaml', '- method\n- knn-threshold\n'),
        'yaml_other': ('other.yaml', 'method: cdp\n'),
        'yaml_hidden': ('hidden.yaml', 'method: gcn-v\n'
                        'params: {hidden_channels: -16}\n'),
        'yaml_device': ('device.yaml', 'method: knn-threshold\n'
                        'device: banana\n'),
        'ckpt_garbage': ('garbage.pth', 'not a checkpoint\n'),
        'a_file': ('a_file', 'I am a file\n'),
        'yaml_seed': ('seed.yaml', 'method: knn-threshold\nseed: -1\n'),
    }
    for name, (filename, text) in texts.items():
        setattr(ns, name, root / filename)
        (root / filename).write_text(text)
    ns.meta_binary = root / 'binary.meta'
    ns.meta_binary.write_bytes(b'0\n\xff\xfe\n')
    ns.yaml_binary = root / 'binary.yaml'
    ns.yaml_binary.write_bytes(b'method: \xff\n')
    ns.fifo = root / 'fifo'
    os.mkfifo(ns.fifo)  # stands for /dev/null: never replaced
    ns.ckpt_gcn_v = root / 'gcn_v.pth'
    torch.save({'format': 'ltc_pyg', 'version': 1, 'method': 'gcn-v',
                'params': {}, 'knn': {}, 'seed': 0, 'state': {}},
               ns.ckpt_gcn_v)
    ns.ckpt_mismatch = root / 'dsgcn_wrong.pth'
    torch.save({'meta': {}, 'state_dict': {
        'conv1.weight': torch.zeros(3, 3)}}, ns.ckpt_mismatch)
    ns.ckpt_pickle = root / 'pickled.pth'
    torch.save({'meta': {'when': datetime.date(2020, 1, 1)}, 'state_dict': {}},
               ns.ckpt_pickle)
    ns.link = root / 'features_link.bin'
    ns.link.symlink_to(ns.features)
    ns.hard = root / 'features_hard.bin'
    os.link(ns.features, ns.hard)
    ns.labels_hard = root / 'labels_hard.meta'
    os.link(ns.labels, ns.labels_hard)
    return ns


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob('*')) if p.is_file()}


def _temp_files(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob('*.tmp*')]


Case = Callable[[SimpleNamespace, Path], list[str]]


def _features(d: SimpleNamespace, path: Path | None = None) -> list[str]:
    return ['--features', str(path or d.features), '--dim', str(DIM)]


def _knn_cmd(d, out, *extra, features=None):
    return ['knn', *_features(d, features), '--k', '5', '--out',
            str(out / 'knn.npz'), *extra]


def _cluster(d, out, *extra, features=None, method='knn-threshold'):
    return ['cluster', *(['--method', method] if method else []),
            *_features(d, features), '--k', '5', '--out',
            str(out / 'pred.meta'), '--report', str(out / 'report.json'),
            *extra]


def _train(d, out, *extra, name='gcn-v', labels=None):
    return ['train', name, *_features(d), '--labels', str(labels or d.labels),
            '--k', '5', '--out', str(out / 'model.pth'), *extra]


def _evaluate(true, pred):
    return ['evaluate', '--labels-true', str(true), '--labels-pred',
            str(pred)]


# Malformed kNN files given to cluster --knn: attribute of d -> message.
KNN_FILES = {
    'knn_int': ['dtype int64'],
    'knn_nan': ['NaN/Inf distances'],
    'knn_far': ['distances in [5, 5.', 'outside [0, 2] of cosine distances'],
    'knn_sim': ['written as similarities'],
    'knn_notself': ['rows do not contain the node itself',
                    'other features or another order'],
    'knn_k0': ['k >= 1'],
    'knn_str': ['dtype <U'],
    'knn_rows': ['rows but the features have'],
    'knn_ids': ['outside [0,'],
    'knn_frac': ['whole numbers'],
    'knn_nodata': ["no key 'data'"],
    'knn_object': ['Python objects'],
    'knn_truncated': ['is unreadable (truncated or corrupt?'],
    'knn_dir': ['is a directory'],
}

# (id, argv, exit code, substrings of the one-line message); '{x}' in a
# substring is replaced by str(d.x) (the file the message must name).
CASES: list[tuple[str, Case, int, list[str]]] = [
    *[(f'cluster-{name.replace("_", "-")}',
       lambda d, o, name=name: _cluster(d, o, '--knn', str(getattr(d, name))),
       2, [*messages, f'{{{name}}}']) for name, messages in KNN_FILES.items()],
    # -- knn ---------------------------------------------------------------
    ('knn-features-missing', lambda d, o: _knn_cmd(
        d, o, features=d.root / 'gone.bin'), 2, ['not found', 'gone.bin']),
    ('knn-features-directory', lambda d, o: _knn_cmd(
        d, o, features=d.feature_dir), 2, ['is a directory',
                                           '{feature_dir}']),
    ('knn-dim-wrong', lambda d, o: [*_knn_cmd(d, o)[:3], '--dim', '15',
                                    *_knn_cmd(d, o)[5:]], 2,
     ['not a multiple of 4 * dim = 60', '{features}']),
    ('knn-dim-missing', lambda d, o: ['knn', '--features', str(d.features),
                                      '--k', '5', '--out', str(o / 'k.npz')],
     2, ['needs the feature dimension, --dim', '{features}']),
    ('knn-k-zero', lambda d, o: [*_knn_cmd(d, o)[:6], '0',
                                 *_knn_cmd(d, o)[7:]], 2,
     ['--k must be at least 1 (got 0)']),
    ('knn-k-too-large', lambda d, o: [*_knn_cmd(d, o)[:6], '100000',
                                      *_knn_cmd(d, o)[7:]], 2,
     ['k=100000', 'only']),
    ('knn-ivf-num-probes-zero', lambda d, o: _knn_cmd(
        d, o, '--method', 'ivf', '--num-probes', '0'), 2,
     ['--num-probes must be at least 1 (got 0)']),
    ('knn-ef-search-negative', lambda d, o: _knn_cmd(
        d, o, '--method', 'hnsw', '--ef-search', '-3'), 2,
     ['--ef-search must be at least 1 (got -3)']),
    ('knn-device-banana', lambda d, o: _knn_cmd(d, o, '--device', 'banana'),
     2, ["--device: Unknown device 'banana'"]),
    ('knn-device-missing-gpu', lambda d, o: _knn_cmd(
        d, o, '--device', 'cuda:99'), 2, ["--device 'cuda:99'",
                                          'CUDA device']),
    ('knn-out-is-features', lambda d, o: [*_knn_cmd(d, o)[:-2], '--out',
                                          str(d.features)], 2,
     ['--out', 'is the input --features', '{features}']),
    ('knn-out-hard-link-to-features', lambda d, o: [
        *_knn_cmd(d, o)[:-2], '--out', str(d.hard)], 2,
     ['--out', 'is the input --features']),
    ('knn-out-symlink-to-features', lambda d, o: [
        *_knn_cmd(d, o)[:-2], '--out', str(d.link)], 2,
     ['--out', 'is the input --features']),
    ('knn-out-dotdot-features', lambda d, o: [
        *_knn_cmd(d, o)[:-2], '--out',
        str(d.root / 'sub' / '..' / 'features.bin')], 2,
     ['--out', 'is the input --features']),
    ('knn-out-is-directory', lambda d, o: [*_knn_cmd(d, o)[:-2], '--out',
                                           str(o)], 2,
     ['--out', 'is a directory']),
    ('knn-out-parent-is-file', lambda d, o: [
        *_knn_cmd(d, o)[:-2], '--out', str(d.a_file / 'knn.npz')], 2,
     ['--out', '{a_file} is not a directory']),
    ('knn-out-is-fifo', lambda d, o: [*_knn_cmd(d, o)[:-2], '--out',
                                      str(d.fifo)], 2,
     ['--out', '{fifo} is not a regular file']),
    ('knn-float64-bin', lambda d, o: _knn_cmd(d, o, features=d.float64), 2,
     ['looks like float64', '{float64}']),
    ('knn-object-npy', lambda d, o: _knn_cmd(d, o, features=d.object_npy), 2,
     ['Python objects', '{object_npy}']),
    ('knn-truncated-npy', lambda d, o: _knn_cmd(
        d, o, features=d.truncated_npy), 2, ['truncated', '{truncated_npy}']),
    ('knn-string-npy', lambda d, o: _knn_cmd(d, o, features=d.string_npy), 2,
     ['dtype <U', '{string_npy}']),
    ('knn-1d-npy', lambda d, o: _knn_cmd(d, o, features=d.vector_npy), 2,
     ['[num_nodes, num_features]', '{vector_npy}']),
    ('knn-garbage-npy', lambda d, o: _knn_cmd(d, o, features=d.garbage_npy),
     2, ['not a readable .npy file', '{garbage_npy}']),
    ('knn-nan-features', lambda d, o: _knn_cmd(
        d, o, features=d.nan_features), 2, ['NaN/Inf in 1 of',
                                            '{nan_features}']),
    ('knn-zero-row', lambda d, o: _knn_cmd(d, o, features=d.zero_features),
     2, ['1 zero-norm rows', '{zero_features}']),
    ('knn-empty-features', lambda d, o: _knn_cmd(d, o, features=d.empty), 2,
     ['is empty', '{empty}']),
    # -- evaluate ----------------------------------------------------------
    ('evaluate-missing', lambda d, o: _evaluate(d.root / 'gone.meta',
                                                d.labels), 2,
     ['not found', 'gone.meta']),
    ('evaluate-directory', lambda d, o: _evaluate(d.root, d.labels), 2,
     ['is a directory']),
    ('evaluate-word-label', lambda d, o: _evaluate(d.meta_word, d.labels), 2,
     ['{meta_word}:3', "'abc'"]),
    ('evaluate-label-2-pow-63', lambda d, o: _evaluate(d.meta_huge, d.labels),
     2, ['{meta_huge}:2', 'does not fit in int64']),
    ('evaluate-float-label', lambda d, o: _evaluate(d.meta_float, d.labels),
     2, ['{meta_float}:2', "'1.5'"]),
    ('evaluate-blank-line', lambda d, o: _evaluate(d.meta_blank, d.labels), 2,
     ['{meta_blank}:2']),
    ('evaluate-not-utf8', lambda d, o: _evaluate(d.meta_binary, d.labels),
     2, ['{meta_binary} is not a text file of labels', 'byte 2']),
    ('evaluate-empty', lambda d, o: _evaluate(d.meta_empty, d.labels), 2,
     ['is empty', '{meta_empty}']),
    ('evaluate-length-mismatch', lambda d, o: _evaluate(d.short_labels,
                                                        d.labels), 2,
     ['{short_labels} has 3 labels but', '{labels}']),
    # -- cluster: outputs --------------------------------------------------
    ('cluster-out-is-labels', lambda d, o: _cluster(
        d, o, '--labels', str(d.labels), '--out', str(d.labels)), 2,
     ['--out', 'is the input --labels']),
    ('cluster-out-hard-link-to-labels', lambda d, o: _cluster(
        d, o, '--labels', str(d.labels), '--out', str(d.labels_hard)), 2,
     ['--out', 'is the input --labels']),
    ('cluster-report-is-labels', lambda d, o: _cluster(
        d, o, '--labels', str(d.labels), '--report', str(d.labels)), 2,
     ['--report', 'is the input --labels']),
    ('cluster-out-is-report', lambda d, o: _cluster(
        d, o, '--report', str(o / 'pred.meta')), 2,
     ['--out and --report name the same file']),
    ('cluster-report-dir-is-file', lambda d, o: _cluster(
        d, o, '--report', str(d.a_file)), 2, ['--report', 'is a file']),
    ('cluster-report-json-is-directory', lambda d, o: _cluster(
        d, o, '--report', str(o / 'dir.json')), 2,
     ['--report', 'is a directory']),
    ('cluster-report-parent-is-file', lambda d, o: _cluster(
        d, o, '--report', str(d.a_file / 'r.json')), 2,
     ['--report', 'is not a directory']),
    ('cluster-knn-cache-is-features', lambda d, o: _cluster(
        d, o, '--knn-cache', str(d.features)), 2,
     ['--knn-cache', 'is the input --features']),
    # -- cluster: kNN files ------------------------------------------------
    # -- cluster: parameters and config ------------------------------------
    ('cluster-param-yaml-error', lambda d, o: _cluster(
        d, o, '--param', 'threshold=[1,'), 2,
     ["--param 'threshold=[1,'", 'not valid YAML']),
    ('cluster-param-unknown-key', lambda d, o: _cluster(
        d, o, '--param', 'thresold=0.5'), 2, ['--param', 'Unknown keys',
                                              'thresold']),
    ('cluster-param-no-equals', lambda d, o: _cluster(
        d, o, '--param', 'threshold'), 2, ['--param expects KEY=VALUE']),
    ('cluster-param-wrong-type', lambda d, o: _cluster(
        d, o, '--param', 'threshold=abc'), 2, ['--param', "'abc'"]),
    ('cluster-threshold-out-of-range', lambda d, o: _cluster(
        d, o, '--method', 'cdp', '--threshold', '7'), 2,
     ['--threshold', 'threshold']),
    ('cluster-config-bad-yaml', lambda d, o: _cluster(
        d, o, '--config', str(d.yaml_bad), method=None), 2,
     ['{yaml_bad}', 'not valid YAML']),
    ('cluster-config-unknown-param', lambda d, o: _cluster(
        d, o, '--config', str(d.yaml_key), method=None), 2,
     ['{yaml_key}', 'Unknown keys', 'thresold']),
    ('cluster-config-num-probes-zero', lambda d, o: _cluster(
        d, o, '--config', str(d.yaml_probes), method=None), 2,
     ['{yaml_probes}', 'knn.num_probes must be at least 1 (got 0)']),
    ('cluster-config-not-mapping', lambda d, o: _cluster(
        d, o, '--config', str(d.yaml_list), method=None), 2,
     ['{yaml_list}', 'a run config is a mapping']),
    ('cluster-config-other-method', lambda d, o: _cluster(
        d, o, '--config', str(d.yaml_other)), 2,
     ['{yaml_other}', "is for 'cdp'"]),
    ('cluster-config-not-utf8', lambda d, o: _cluster(
        d, o, '--config', str(d.yaml_binary), method=None), 2,
     ['{yaml_binary} is not valid YAML']),
    ('cluster-config-seed-negative', lambda d, o: _cluster(
        d, o, '--config', str(d.yaml_seed), method=None), 2,
     ['{yaml_seed}', 'seed must be in [0, 2^32 - 1] (got -1)']),
    ('cluster-seed-negative', lambda d, o: _cluster(d, o, '--seed', '-1'), 2,
     ['--seed must be in [0, 2^32 - 1] (got -1)']),
    ('cluster-config-directory', lambda d, o: _cluster(
        d, o, '--config', str(d.root), method=None), 2, ['is a directory']),
    ('cluster-config-device-banana', lambda d, o: _cluster(
        d, o, '--config', str(d.yaml_device), method=None), 2,
     ['{yaml_device}: device: Unknown device', "'banana'"]),
    ('cluster-device-banana', lambda d, o: _cluster(
        d, o, '--device', 'banana'), 2, ["--device: Unknown device 'banana'"]),
    ('cluster-method-unknown', lambda d, o: _cluster(d, o, method='nope'), 2,
     ["Unknown method 'nope'"]),
    ('cluster-no-method', lambda d, o: _cluster(d, o, method=None), 2,
     ['--method is required']),
    ('cluster-k-zero', lambda d, o: [*_cluster(d, o)[:8], '0',
                                     *_cluster(d, o)[9:]], 2,
     ['--k', 'knn.k must be at least 1 (got 0)']),
    ('cluster-num-probes-zero', lambda d, o: _cluster(
        d, o, '--knn-method', 'blocked', '--num-probes', '0'), 2,
     ['--num-probes', 'knn.num_probes must be at least 1 (got 0)']),
    ('cluster-labels-count', lambda d, o: _cluster(
        d, o, '--labels', str(d.short_labels)), 2,
     ['Got 3 labels', '{short_labels}']),
    ('cluster-labels-huge', lambda d, o: _cluster(
        d, o, '--labels', str(d.meta_huge)), 2,
     ['{meta_huge}:2', 'does not fit in int64']),
    # -- cluster: checkpoints ----------------------------------------------
    ('cluster-learned-without-checkpoint', lambda d, o: _cluster(
        d, o, method='gcn-v'), 2, ['needs --checkpoint']),
    ('cluster-checkpoint-missing', lambda d, o: _cluster(
        d, o, '--checkpoint', str(d.root / 'gone.pth'), method='gcn-v'), 2,
     ['not found', 'gone.pth']),
    ('cluster-checkpoint-directory', lambda d, o: _cluster(
        d, o, '--checkpoint', str(d.root), method='gcn-v'), 2,
     ['is a directory']),
    ('cluster-checkpoint-garbage', lambda d, o: _cluster(
        d, o, '--checkpoint', str(d.ckpt_garbage), method='gcn-v'), 2,
     ['{ckpt_garbage}', 'not a readable checkpoint', 'corrupt']),
    ('cluster-checkpoint-other-method', lambda d, o: _cluster(
        d, o, '--checkpoint', str(d.ckpt_gcn_v), method='gcn-d'), 2,
     ['{ckpt_gcn_v}', "holds a 'gcn-v' model, not 'gcn-d'"]),
    ('cluster-checkpoint-size-mismatch', lambda d, o: _cluster(
        d, o, '--checkpoint', str(d.ckpt_mismatch), method='gcn-d'), 2,
     ['{ckpt_mismatch}', "does not fit 'gcn-d'"]),
    ('cluster-checkpoint-pickled-objects', lambda d, o: _cluster(
        d, o, '--checkpoint', str(d.ckpt_pickle), method='gcn-v'), 2,
     ['{ckpt_pickle}', 'not a readable checkpoint', 'Python objects']),
    # -- train -------------------------------------------------------------
    ('train-out-is-labels', lambda d, o: [*_train(d, o)[:-2], '--out',
                                          str(d.labels)], 2,
     ['--out', 'is the input --labels']),
    ('train-out-is-features', lambda d, o: [*_train(d, o)[:-2], '--out',
                                            str(d.features)], 2,
     ['--out', 'is the input --features']),
    ('train-out-is-directory', lambda d, o: [*_train(d, o)[:-2], '--out',
                                             str(o)], 2,
     ['--out', 'is a directory']),
    ('train-untrainable', lambda d, o: _train(d, o, name='knn-threshold'), 2,
     ['nothing to train']),
    ('train-resume-missing', lambda d, o: _train(
        d, o, '--resume', str(d.root / 'gone.pth')), 2,
     ['not found', 'gone.pth']),
    ('train-all-labels-unknown', lambda d, o: _train(
        d, o, labels=d.meta_unknown), 2, ['training labels are -1']),
    ('train-hidden-channels-negative', lambda d, o: _train(
        d, o, '--param', 'hidden_channels=-16'), 2,
     ['--param', 'hidden_channels must be at least 1 (got -16)']),
    ('train-config-hidden-channels-negative', lambda d, o: _train(
        d, o, '--config', str(d.yaml_hidden)), 2,
     ['{yaml_hidden}', 'hidden_channels must be at least 1 (got -16)']),
    ('train-device-banana', lambda d, o: _train(d, o, '--device', 'banana'),
     2, ["--device: Unknown device 'banana'"]),
]


@pytest.mark.parametrize('case', CASES, ids=[c[0] for c in CASES])
def test_bad_input(d, tmp_path, capsys, case):
    _, argv, code, expected = case
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'dir.json').mkdir()
    before = _digest(d.root)
    assert main(['-q', *argv(d, out)]) == code
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f'ltc-pyg {argv(d, out)[0]}: error: ')
    for text in expected:
        text = text.format(**{k: v for k, v in vars(d).items()
                              if isinstance(v, Path)})
        assert text in lines[0], (text, lines[0])
    for advice in ('allow_pickle', 'weights_only', '.tmp'):
        assert advice not in lines[0]
    assert sorted(p.name for p in out.iterdir()) == ['dir.json']
    assert not _temp_files(out, d.root)
    assert _digest(d.root) == before


def test_the_suite_has_at_least_60_cases():
    assert len(CASES) >= 60


# -- behaviours that must keep working -------------------------------------

def test_ctrl_c_is_one_line_and_exit_130(d, tmp_path, capsys, monkeypatch):
    def interrupted(path, labels):
        path.write_text('partial')
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(cli, 'write_labels', interrupted)
    # Garbage of earlier tests (Infomap models in reference cycles) could be
    # collected right after the kill, and a KeyboardInterrupt raised in its
    # finaliser is only printed ("Exception ignored"): collect it first.
    gc.collect()
    assert main(['-q', *_cluster(d, tmp_path)]) == 130
    assert capsys.readouterr().err.strip().splitlines() == [
        'ltc-pyg cluster: interrupted']
    assert list(tmp_path.iterdir()) == []


def test_sigterm_inside_a_write_leaves_no_temp_file(d, tmp_path, capsys,
                                                    monkeypatch):
    def terminated(path, knn, **metadata):
        with atomic_write(path) as f:
            f.write(b'partial')
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(cli, 'write_knn', terminated)
    (tmp_path / 'knn.npz').write_bytes(b'old')
    handler = signal.getsignal(signal.SIGTERM)
    assert main(['-q', *_knn_cmd(d, tmp_path)]) == 143
    assert signal.getsignal(signal.SIGTERM) is handler
    assert capsys.readouterr().err.strip().splitlines() == [
        'ltc-pyg knn: terminated']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['knn.npz']
    assert (tmp_path / 'knn.npz').read_bytes() == b'old'


def test_console_entry_file_too_large_exits_2_with_one_line(d, tmp_path):
    import resource

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))

    result = subprocess.run(
        [sys.executable, '-m', 'ltc_pyg.pipelines.cli', '-q',
         *_knn_cmd(d, tmp_path)], capture_output=True, text=True,
        preexec_fn=limit, timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f'ltc-pyg knn: error: cannot write --out {tmp_path / "knn.npz"}: '
        f'File too large']
    assert list(tmp_path.iterdir()) == []


def test_disk_full_names_the_output(d, tmp_path, capsys, monkeypatch):
    def full(path, labels):
        raise OSError(errno.ENOSPC, 'No space left on device', str(path))

    monkeypatch.setattr(cli, 'write_labels', full)
    assert main(_cluster(d, tmp_path)) == 2
    line, = capsys.readouterr().err.strip().splitlines()
    assert line == (f'ltc-pyg cluster: error: cannot write --out '
                    f'{tmp_path / "pred.meta"}: No space left on device')
    assert list(tmp_path.iterdir()) == []


def test_a_bug_is_one_line_unless_debugging(d, tmp_path, capsys,
                                            monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError('division by zero')

    monkeypatch.setattr(cli, 'cluster', broken)
    monkeypatch.delenv('LTC_PYG_DEBUG', raising=False)
    assert main(_cluster(d, tmp_path)) == 1
    line, = capsys.readouterr().err.strip().splitlines()
    assert line.startswith('ltc-pyg cluster: internal error: '
                           'ZeroDivisionError: division by zero')
    assert 'rerun with -v' in line
    monkeypatch.setenv('LTC_PYG_DEBUG', '1')
    with pytest.raises(ZeroDivisionError):
        main(_cluster(d, tmp_path))
    monkeypatch.delenv('LTC_PYG_DEBUG')
    with pytest.raises(ZeroDivisionError):
        main(['-v', *_cluster(d, tmp_path)])
    assert list(tmp_path.iterdir()) == []


def test_failed_report_keeps_the_previous_prediction(d, tmp_path, capsys,
                                                     monkeypatch):
    pred = tmp_path / 'pred.meta'
    pred.write_text('old\n')

    def broken(path, value):
        raise ValueError('report rejected')

    monkeypatch.setattr(cli, 'write_json', broken)
    assert main(_cluster(d, tmp_path)) == 2
    assert 'report rejected' in capsys.readouterr().err
    assert pred.read_text() == 'old\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['pred.meta']
    # Folders made for the outputs go again too.
    nested = [*_cluster(d, tmp_path)[:-4], '--out',
              str(tmp_path / 'new' / 'deeper' / 'pred.meta'), '--report',
              str(tmp_path / 'r.json')]
    assert main(nested) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ['pred.meta']


def test_outputs_keep_mode_and_write_through_symlinks(d, tmp_path):
    pred = tmp_path / 'pred.meta'
    pred.write_text('old\n')
    pred.chmod(0o600)
    target = tmp_path / 'real.json'
    target.write_text('{}')
    (tmp_path / 'report.json').symlink_to(target)
    assert main(['-q', *_cluster(d, tmp_path)]) == 0
    assert pred.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / 'report.json').is_symlink()
    assert json.loads(target.read_text())['method'] == 'knn-threshold'
    assert len(read_labels(pred)) == d.n


def test_unknown_labels_are_left_out_of_the_scores(d, tmp_path, capsys):
    truth = d.labels_array.copy()
    truth[::3] = -1
    true_path, pred_path = tmp_path / 'true.meta', tmp_path / 'pred.meta'
    write_labels(true_path, truth)
    assert main(['-q', *_cluster(d, tmp_path, '--labels', str(true_path),
                                 '--threshold', '0.7')]) == 0
    err = capsys.readouterr().err
    unknown = int((truth == -1).sum())
    assert (f'note: {unknown} of {d.n} samples have label -1 (unknown) in '
            f'{true_path}') in err
    report = json.loads((tmp_path / 'report.json').read_text())
    pred = read_labels(pred_path)
    known = truth != -1
    expected = evaluate(truth[known], pred[known])
    assert report['num_unknown_labels'] == unknown
    assert report['metrics'] == pytest.approx(expected)
    assert main(['evaluate', '--json', '--labels-true', str(true_path),
                 '--labels-pred', str(pred_path)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == pytest.approx(expected)
    assert f'note: {unknown} of {d.n}' in captured.err


def test_knn_command_output_is_a_recognised_cache(d, tmp_path, recwarn):
    cache = tmp_path / 'cache.npz'
    assert main(['-q', 'knn', *_features(d), '--k', '5', '--out',
                 str(cache)]) == 0
    stamp = cache.stat().st_mtime_ns
    assert main(['-q', *_cluster(d, tmp_path, '--knn-cache',
                                 str(cache))]) == 0
    assert not [w for w in recwarn if 'cache' in str(w.message)
                or 'fingerprint' in str(w.message)]
    assert cache.stat().st_mtime_ns == stamp


def test_corrupt_knn_cache_is_rebuilt_with_a_warning(d, tmp_path):
    cache = tmp_path / 'cache.npz'
    assert main(['-q', 'knn', *_features(d), '--k', '5', '--out',
                 str(cache)]) == 0
    cache.write_bytes(cache.read_bytes()[:300])
    with pytest.warns(UserWarning, match='kNN cache is unusable.*rebuilding'):
        assert main(['-q', *_cluster(d, tmp_path, '--knn-cache',
                                     str(cache))]) == 0
    knn = read_knn(cache, num_nodes=d.n, k=5)
    np.testing.assert_array_equal(knn.neighbor[:, 0], np.arange(d.n))


def test_knn_read_checks_keep_original_files_working(reference_fixtures):
    path = reference_fixtures / 'graph' / 'knns' / 'faiss_k_10.npz'
    knn = read_knn(path)
    assert knn.neighbor.shape == (2000, 10)
    np.testing.assert_array_equal(knn.neighbor[:, 0], np.arange(2000))


def test_model_of_another_embedding_names_the_checkpoint(
        d, tmp_path, capsys, reference_fixtures):
    path = reference_fixtures / 'models' / 'gcn_v.pth'  # 256-d features
    assert main(['-q', *_cluster(d, tmp_path, '--checkpoint', str(path),
                                 method='gcn-v')]) == 2
    line, = capsys.readouterr().err.strip().splitlines()
    assert 'takes 256 features but gets 16' in line
    assert line.endswith(f'(model: --checkpoint {path})')
    assert list(tmp_path.iterdir()) == []


def test_original_dsgcn_seg_given_to_gcn_d_names_the_checkpoint(
        d, tmp_path, capsys, reference_fixtures):
    path = reference_fixtures / 'models' / 'dsgcn_seg.pth'
    assert main(['-q', *_cluster(d, tmp_path, '--checkpoint', str(path),
                                 method='gcn-d')]) == 2
    line, = capsys.readouterr().err.strip().splitlines()
    assert f"{path} does not fit 'gcn-d'" in line
    assert list(tmp_path.iterdir()) == []


def test_resume_in_place_is_allowed(d, tmp_path, capsys):
    config = tmp_path / 'tiny.yaml'
    config.write_text('method: gcn-v\nparams: {hidden_channels: 8, '
                      'train: {steps: 2, batch_size: null}}\n')
    model = tmp_path / 'model.pth'
    argv = ['-q', *_train(d, tmp_path, '--config', str(config))]
    assert main(argv) == 0
    assert main([*argv, '--resume', str(model)]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'model.pth', 'tiny.yaml']
