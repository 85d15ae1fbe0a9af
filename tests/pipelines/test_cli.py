import json

import numpy as np
import pytest

from ltc_pyg.data.io import read_knn, read_labels, write_features, write_labels
from ltc_pyg.data.synthetic import make_splits
from ltc_pyg.pipelines.cli import main


@pytest.fixture
def data(tmp_path):
    split = make_splits(num_train_identities=1, num_test_identities=12,
                        dim=16, mean_size=10, spread=0.5,
                        low_quality_fraction=0.0, seed=0)['test']
    write_features(tmp_path / 'features.bin', split.x)
    write_labels(tmp_path / 'labels.meta', split.labels)
    return tmp_path, split


def test_knn_writes_original_layout(data):
    root, split = data
    out = root / 'knns' / 'faiss_k_5.npz'
    assert main(['knn', '--features', str(root / 'features.bin'), '--dim',
                 '16', '--k', '5', '--out', str(out)]) == 0
    knn = read_knn(out, num_nodes=len(split.labels), k=5)
    assert (knn.neighbor[:, 0] == np.arange(len(split.labels))).all()


def test_cluster_then_evaluate(data, capsys):
    root, split = data
    pred, report = root / 'pred.meta', root / 'report.json'
    assert main(['-q', 'cluster', '--method', 'knn-threshold', '--features',
                 str(root / 'features.bin'), '--dim', '16', '--k', '10',
                 '--labels', str(root / 'labels.meta'), '--threshold', '0.7',
                 '--out', str(pred), '--report', str(report)]) == 0
    labels = read_labels(pred, num_nodes=len(split.labels))
    written = json.loads(report.read_text())
    assert written['method'] == 'knn-threshold'
    assert written['params'] == {'threshold': 0.7, 'threshold_used': 0.7}
    assert written['knn']['k'] == 10
    assert written['num_clusters'] == len(np.unique(labels))
    assert [s['name'] for s in written['stages']] == [
        'read features', 'normalise features', 'kNN',
        'threshold + components', 'evaluate']
    assert written['metrics']['pairwise_fscore'] > 0.85
    capsys.readouterr()
    assert main(['evaluate', '--labels-true', str(root / 'labels.meta'),
                 '--labels-pred', str(pred), '--json']) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == pytest.approx(written['metrics'])


def test_evaluate_json_null_for_undefined(tmp_path, capsys):
    write_labels(tmp_path / 'a.meta', np.array([0, 0, 1]))
    write_labels(tmp_path / 'b.meta', np.array([0, 1, 2]))
    assert main(['evaluate', '--labels-true', str(tmp_path / 'a.meta'),
                 '--labels-pred', str(tmp_path / 'b.meta'), '--json']) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores['pairwise_precision'] is None
    assert scores['pairwise_recall'] == 0.0


def test_config_and_param_flags(data, tmp_path):
    root, _ = data
    config = tmp_path / 'c.yaml'
    config.write_text('method: knn-threshold\nknn: {k: 6}\n'
                      'params: {threshold: 0.99}\n')
    report = root / 'r.json'
    assert main(['-q', 'cluster', '--config', str(config), '--features',
                 str(root / 'features.bin'), '--dim', '16', '--param',
                 'threshold=0.4', '--out', str(root / 'p.meta'), '--report',
                 str(report)]) == 0
    written = json.loads(report.read_text())
    assert written['params']['threshold'] == 0.4 and written['knn_k'] == 6


@pytest.mark.parametrize('args, message', [
    (['--dim', '15'], 'not a multiple of 4 * dim = 60'),
    (['--dim', '16', '--labels', 'short.meta'], 'Got 3 labels in'),
    (['--dim', '16', '--method', 'nope'], "Unknown method 'nope'"),
    (['--dim', '16', '--k', '1000'], 'only'),
    (['--dim', '16', '--param', 'threshold'], 'KEY=VALUE'),
    (['--dim', '16', '--param', 'thresold=0.5'], 'Unknown keys'),
])
def test_bad_input_exits_2_with_one_line_and_no_output(data, capsys, args,
                                                       message):
    root, _ = data
    write_labels(root / 'short.meta', np.array([0, 1, 2]))
    args = [a.replace('short.meta', str(root / 'short.meta')) for a in args]
    if '--method' not in args:
        args += ['--method', 'knn-threshold']
    out = root / 'never.meta'
    code = main(['-q', 'cluster', '--features', str(root / 'features.bin'),
                 '--out', str(out), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0], err
    assert err[0].startswith('ltc-pyg cluster: error:')
    assert not out.exists()


def test_missing_file_names_it(tmp_path, capsys):
    code = main(['evaluate', '--labels-true', str(tmp_path / 'gone.meta'),
                 '--labels-pred', str(tmp_path / 'gone.meta')])
    assert code == 2
    assert 'gone.meta' in capsys.readouterr().err


def test_train_refuses_untrainable(data, capsys):
    root, _ = data
    code = main(['-q', 'train', 'knn-threshold', '--features',
                 str(root / 'features.bin'), '--dim', '16', '--labels',
                 str(root / 'labels.meta'), '--k', '5', '--out',
                 str(root / 'x.ckpt')])
    assert code == 2
    assert 'nothing to train' in capsys.readouterr().err
    assert not (root / 'x.ckpt').exists()


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(['--help'])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for command in ('knn', 'evaluate', 'train', 'cluster'):
        assert command in text
