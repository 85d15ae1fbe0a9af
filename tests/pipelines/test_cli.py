import json
import subprocess
import sys

import numpy as np
import pytest

from ltc_pyg.config import KNNConfig
from ltc_pyg.data.io import (
    read_knn,
    read_knn_metadata,
    read_labels,
    write_features,
    write_labels,
)
from ltc_pyg.data.synthetic import make_splits
from ltc_pyg.pipelines import cli as cli_module
from ltc_pyg.pipelines.checkpoint import save_checkpoint
from ltc_pyg.pipelines.cli import UserError, _parse_params, main
from ltc_pyg.pipelines.run import build_graph, cluster, make_method, train


@pytest.fixture
def data(tmp_path):
    split = make_splits(num_train_identities=1, num_test_identities=12,
                        dim=16, mean_size=10, spread=0.5,
                        low_quality_fraction=0.0, seed=0)['test']
    write_features(tmp_path / 'features.bin', split.x)
    write_labels(tmp_path / 'labels.meta', split.labels)
    return tmp_path, split


@pytest.mark.parametrize('method', ['flat', 'blocked'])
def test_knn_writes_original_layout(data, method):
    root, split = data
    out = root / 'knns' / 'faiss_k_5.npz'
    assert main(['knn', '--features', str(root / 'features.bin'), '--dim',
                 '16', '--k', '5', '--method', method, '--out',
                 str(out)]) == 0
    knn = read_knn(out, num_nodes=len(split.labels), k=5)
    assert (knn.neighbor[:, 0] == np.arange(len(split.labels))).all()
    assert read_knn_metadata(out)['method'] == method


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
        'threshold + components', 'evaluate', 'write']
    assert written['total_seconds'] == pytest.approx(
        sum(s['seconds'] for s in written['stages']), abs=1e-6)
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
    (['--dim', '16', '--method', 'infomapp'], "did you mean 'infomap'?"),
    (['--dim', '16', '--method', 'aro', '--threshold', '0.5'],
     "'aro' has no similarity threshold"),
    (['--dim', '16', '--device', 'gpu'], "Unknown device 'gpu'"),
    (['--dim', '16', '--knn', 'k.npz', '--knn-method', 'ivf'],
     '--knn-method chooses a search, but --knn'),
    (['--dim', '16', '--knn', 'k.npz', '--k', '20'],
     'has kNN rows of k=5, fewer than the k=20 asked for'),
])
def test_bad_input_exits_2_with_one_line_and_no_output(data, capsys, args,
                                                       message):
    root, _ = data
    write_labels(root / 'short.meta', np.array([0, 1, 2]))
    assert main(['knn', '--features', str(root / 'features.bin'), '--dim',
                 '16', '--k', '5', '--out', str(root / 'k.npz')]) == 0
    args = [a.replace('short.meta', str(root / 'short.meta'))
            .replace('k.npz', str(root / 'k.npz')) for a in args]
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


def test_help_and_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(['--version'])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == 'ltc-pyg 0.1.0'
    with pytest.raises(SystemExit):
        main(['train', '--help'])
    description = ' '.join(capsys.readouterr().out.split())
    listed = description.split('Methods: ')[1].split('.')[0].split(', ')
    assert {'gcn-d', 'gcn-d+s', 'gcn-v', 'lgcn'} <= set(listed)
    assert 'knn-threshold' not in listed and 'infomap' not in listed


def test_methods_lists_parameters(capsys):
    assert main(['methods', 'knn-threshold', 'gcn-v']) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith('knn-threshold (not trained): ')
    assert out[1].startswith('    threshold = None [--threshold]: Keep '
                             'edges with cosine similarity >= this.')
    assert 'gcn-v (trainable): ' in '\n'.join(out)
    assert any(line.startswith('    tau = None [--threshold]: ')
               for line in out), out


def test_methods_shows_tex_as_text(capsys):
    assert main(['methods', 'fc-es', 'learned-edges']) == 0
    out = capsys.readouterr().out
    assert '    nep_threshold = 0.22: Early-stop threshold θ on NEP.' in out
    assert "'log-odds' log(p/(1-p)) (floored at 10^-3)" in out
    assert '\\' not in out and ':math:' not in out


def test_param_merges_dotted_and_nested_keys():
    config = {'train': {'steps': 200, 'lr': 0.1}, 'tau': 0.8}
    merged = _parse_params(['train.steps=30', 'train={lr: 0.01}',
                            'tau=0.7'], config)
    assert merged == {'train': {'steps': 30, 'lr': 0.01}, 'tau': 0.7}
    assert config['train']['steps'] == 200  # the input is not modified
    with pytest.raises(UserError, match="'tau' is not a group"):
        _parse_params(['tau.x=1'], config)


def test_threshold_maps_to_the_methods_own_parameter(data, tmp_path):
    root, split = data
    knn = root / 'k.npz'
    assert main(['knn', '--features', str(root / 'features.bin'), '--dim',
                 '16', '--k', '10', '--out', str(knn)]) == 0
    common = ['--features', str(root / 'features.bin'), '--dim', '16',
              '--labels', str(root / 'labels.meta')]
    ckpt = root / 'v.ckpt'
    assert main(['-q', 'train', '--method', 'gcn-v', *common, '--knn',
                 str(knn), '--k', '6', '--param', 'train.steps=2',
                 '--out', str(ckpt)]) == 0
    report = root / 'r.json'
    # The checkpoint's k=6 cuts the k=10 file; --threshold sets gcn-v's tau.
    assert main(['-q', 'cluster', '--method', 'gcn-v', '--checkpoint',
                 str(ckpt), *common, '--knn', str(knn), '--threshold',
                 '0.99', '--out', str(root / 'p.meta'), '--report',
                 str(report)]) == 0
    written = json.loads(report.read_text())
    assert written['params']['tau'] == 0.99 and written['knn_k'] == 6
    assert written['params']['train']['steps'] == 2


def test_conflicting_checkpoint_k_is_an_error(data, capsys):
    root, _ = data
    common = ['--features', str(root / 'features.bin'), '--dim', '16']
    ckpt = root / 'v.ckpt'
    assert main(['-q', 'train', 'gcn-v', *common, '--labels',
                 str(root / 'labels.meta'), '--k', '6', '--param',
                 'train.steps=1', '--out', str(ckpt)]) == 0
    code = main(['-q', 'cluster', '--method', 'gcn-v', '--checkpoint',
                 str(ckpt), *common, '--k', '10', '--out',
                 str(root / 'p.meta')])
    err = capsys.readouterr().err
    assert code == 2
    assert "trained on a kNN graph with k=6, method='auto'; k=10 " \
        'conflicts' in err
    # Another search of the same k is allowed: an approximate graph.
    report = root / 'r.json'
    assert main(['-q', 'cluster', '--method', 'gcn-v', '--checkpoint',
                 str(ckpt), *common, '--knn-method', 'blocked', '--out',
                 str(root / 'p.meta'), '--report', str(report)]) == 0
    written = json.loads(report.read_text())
    assert written['knn']['method'] == 'blocked'
    assert written['knn']['num_probes'] == 128  # blocked's default
    assert written['knn']['k'] == 6


def test_default_logging_hides_info(data):
    # faiss logs INFO lines on import; by default only warnings show.
    root, _ = data
    result = subprocess.run(
        [sys.executable, '-m', 'ltc_pyg.pipelines.cli', 'cluster',
         '--method', 'knn-threshold', '--features',
         str(root / 'features.bin'), '--dim', '16', '--k', '5', '--out',
         str(root / 'p.meta')], capture_output=True, text=True, check=True)
    assert result.stderr == ''
    assert result.stdout.startswith('knn-threshold: ')


def test_knn_only_methods_never_read_the_features(data, capsys):
    # With a kNN file, a method that clusters the kNN rows alone gives the
    # labels it gives with the features in the graph, and never reads them:
    # a NaN written into the file afterwards goes unnoticed, while a method
    # that reads the features (k-means) still rejects it.
    root, split = data
    features, knn = root / 'features.bin', root / 'k.npz'
    assert main(['-q', 'knn', '--features', str(features), '--dim', '16',
                 '--k', '10', '--out', str(knn)]) == 0
    graph = build_graph(split.x, knn_path=knn)
    expected = cluster(graph, make_method('knn-threshold',
                                          {'threshold': 0.7})).labels
    assert 'x' in graph
    poisoned = split.x.copy()
    poisoned[3, 5] = np.nan
    poisoned.astype(np.float32).tofile(features)  # write_features checks
    common = ['--features', str(features), '--dim', '16', '--knn', str(knn)]
    report = root / 'report.json'
    assert main(['-q', 'cluster', '--method', 'knn-threshold', *common,
                 '--threshold', '0.7', '--out', str(root / 'pred.meta'),
                 '--report', str(report)]) == 0
    np.testing.assert_array_equal(
        read_labels(root / 'pred.meta', num_nodes=len(split.labels)),
        expected)
    stages = [s['name'] for s in json.loads(report.read_text())['stages']]
    assert 'normalise features' not in stages
    assert 'x' not in build_graph(poisoned, knn_path=knn,
                                  keep_features=False)
    capsys.readouterr()
    assert main(['-q', 'cluster', '--method', 'kmeans', *common, '--param',
                 'n_clusters=12', '--out', str(root / 'never.meta')]) == 2
    assert 'NaN' in capsys.readouterr().err


def test_a_checkpoint_without_threshold_fails_before_reading(data, capsys,
                                                              monkeypatch):
    # A learned method with no threshold (none given, none chosen in
    # training) used to fail after its inference: minutes at 584K.
    root, split = data
    graph = build_graph(split.x, KNNConfig(k=6), split.labels)
    method = train(graph, 'gcn-v', {'tau': None, 'train': {'steps': 1}})
    method.trained_threshold = None
    ckpt = root / 'v.ckpt'
    save_checkpoint(ckpt, method, KNNConfig(k=6))

    def read(*args, **kwargs):
        raise AssertionError('the features were read')

    monkeypatch.setattr(cli_module, '_read_inputs', read)
    code = main(['-q', 'cluster', '--method', 'gcn-v', '--checkpoint',
                 str(ckpt), '--features', str(root / 'features.bin'),
                 '--dim', '16', '--out', str(root / 'p.meta')])
    assert code == 2
    assert ("'gcn-v' has no tau: give one (--threshold) or train it on "
            f'labelled data, which chooses it (model: --checkpoint {ckpt})'
            in capsys.readouterr().err)
    assert not (root / 'p.meta').exists()
