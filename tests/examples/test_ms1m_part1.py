import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from ltc_pyg.data.io import write_features, write_labels
from ltc_pyg.metrics import evaluate
from ltc_pyg.pipelines.methods import METHODS

EXAMPLE = Path(__file__).resolve().parents[2] / 'examples' / 'ms1m_part1.py'


@pytest.fixture(scope='module')
def example():
    spec = importlib.util.spec_from_file_location('ms1m_part1', EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_synthetic_fallback_runs_the_pipeline(example, tmp_path):
    rows = example.main([
        '--data-root', str(tmp_path / 'absent'), '--num-identities', '12',
        '--mean-size', '12', '--synthetic-dim', '32', '--k', '10',
        '--methods', 'knn-threshold', 'gcn-v', 'cdp', '--param',
        'gcn-v:train.steps=3', '--param', 'cdp:threshold=0.5',
        '--no-progress', '-q', '--report', str(tmp_path / 'report')])
    assert list(rows) == ['knn-threshold', 'gcn-v', 'cdp']
    for row in rows.values():
        assert 0 <= row['bcubed_fscore'] <= 1 and 0 <= row['nmi'] <= 1
        assert row['clusters'] >= 1 and row['seconds'] >= 0
    written = json.loads((tmp_path / 'report' / 'report.json').read_text())
    assert [m['method'] for m in written['methods']] == list(rows)
    assert (tmp_path / 'report' / 'methods.png').stat().st_size > 0
    assert (tmp_path / 'report' / 'cdp' / 'threshold_sweep.png').is_file()


def test_reads_the_original_layout(example, tmp_path, capsys):
    # Two tight pairs of unit vectors far apart: 4 samples, 2 identities.
    angles = np.deg2rad([0., 2., 90., 92.])
    x = np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)
    y = np.array([0, 0, 1, 1])
    write_features(tmp_path / 'features' / 'part1_test.bin', x)
    write_labels(tmp_path / 'labels' / 'part1_test.meta', y)
    rows = example.main(['--data-root', str(tmp_path), '--dim', '2',
                         '--k', '2', '--methods', 'knn-threshold', 'cdp',
                         '--param', 'cdp:threshold=0.9', '--no-progress',
                         '-q'])
    assert rows['cdp']['pairwise_fscore'] == 1.0
    assert rows['cdp'] == {**rows['cdp'], **evaluate(y, y)}
    # The searched kNN is cached in the original layout for the next run.
    assert (tmp_path / 'knns' / 'part1_test' / 'faiss_k_2.npz').is_file()
    assert f'part1_test ({tmp_path})' in capsys.readouterr().out


def test_learned_method_without_training_data_is_skipped(example, tmp_path):
    x = np.eye(4, dtype=np.float32)
    write_features(tmp_path / 'features' / 'part1_test.bin', x)
    rows = example.main(['--data-root', str(tmp_path), '--dim', '4',
                         '--k', '2', '--methods', 'gcn-v', 'cdp',
                         '--param', 'cdp:threshold=0.9', '--no-progress',
                         '-q'])
    assert list(rows) == ['cdp']  # no checkpoint, no part0_train
    assert rows['cdp']['clusters'] == 4  # orthogonal: no link


def test_bad_param_names_the_expected_form(example, tmp_path):
    with pytest.raises(ValueError, match='NAME:KEY=VALUE'):
        example.main(['--data-root', str(tmp_path), '--param', 'nope'])


def test_default_run_names_every_method_or_why_not(example):
    names, skipped = example.method_names(example.parse_args([]))
    assert set(names) | set(skipped) == set(METHODS)
    assert 'lgcn' not in names and skipped['lgcn'].startswith('slow, ')
    assert '--all' in skipped['lgcn']
    assert skipped['gcn-e'] == "the same method as 'gcn-v+e'"
    everything, _ = example.method_names(example.parse_args(['--all']))
    assert 'lgcn' in everything
    named, none = example.method_names(example.parse_args(
        ['--methods', 'lgcn']))
    assert named == ['lgcn'] and none == {}
