r"""Checks every registered method passes (as scikit-learn's
``test_common.py`` does for its estimators): learned ones resume exactly,
save periodically from a fresh start, round-trip through checkpoints and the
CLI and say when they are untrained; every method gives the same labels for
the same seed, and labels that are a partition ``0..C-1``."""
import re

import numpy as np
import pytest
import torch
import yaml

from ltc_pyg.config import KNNConfig
from ltc_pyg.data.io import read_labels, write_features, write_labels
from ltc_pyg.data.synthetic import make_splits
from ltc_pyg.pipelines.checkpoint import load_method, save_checkpoint
from ltc_pyg.pipelines.cli import main
from ltc_pyg.pipelines.methods import METHODS, build_method, get_method
from ltc_pyg.pipelines.run import build_graph, cluster, make_method, train

K = 8
GCN_V = {'hidden_channels': 16, 'tau': 0.5, 'tau_0': 0.5,
         'train': {'steps': 4, 'lr': 0.05, 'batch_size': 30,
                   'save_every': 2}}
GCN_D = {'proposals': [{'k': 8, 'th': 0.55, 'max_size': 40, 'min_size': 3},
                       {'k': 8, 'th': 0.65, 'max_size': 40, 'min_size': 3}],
         'hidden_channels': [16, 8],
         'train': {'epochs': 2, 'batch_size': 8, 'lr': 0.01,
                   'save_every': 1}}
#: Small, fast settings of every learned method; each saves periodically
#: (composites first while the method they build on trains).
LEARNED = {
    'gcn-v': GCN_V,
    'gcn-v+e': {'gcn_v': GCN_V, 'hidden_channels': 8, 'tau': 0.5,
                'ignore_ratio': 0.5, 'train_ignore_ratio': 0.5,
                'train': {'steps': 4, 'optimizer': 'adam', 'lr': 1e-3,
                          'batch_size': 4, 'save_every': 2}},
    'gcn-d': GCN_D,
    'gcn-d+s': {'gcn_d': GCN_D, 'hidden_channels': [8],
                'train': {'epochs': 2, 'batch_size': 4, 'lr': 0.01,
                          'save_every': 1}},
    'learned-edges': {'hidden_channels': 8,
                      'train': {'steps': 4, 'optimizer': 'adam', 'lr': 0.01,
                                'batch_size': 16, 'save_every': 2}},
    'lgcn': {'k_at_hop': [4, 2], 'active_connection': 2,
             'hidden_channels': [8, 4],
             'train': {'epochs': 2, 'batch_size': 16, 'optimizer': 'adam',
                       'lr': 0.01, 'samples_per_epoch': 48,
                       'save_every': 1}},
}
TRAINABLE = sorted(name for name in METHODS if get_method(name).trainable)
#: One name per learned class (aliases such as 'gcn-e' share 'gcn-v+e''s).
LEARNED_CLASSES = sorted({get_method(name).name for name in TRAINABLE})
#: Parameters of the other methods where the defaults do not fit 60 nodes.
OTHERS = {'spectral': {'n_components': 8}, 'meanshift': {'num_seeds': 20}}


def _learned(name: str) -> dict:
    return LEARNED[get_method(name).name]


@pytest.fixture(scope='module')
def split():
    return make_splits(num_train_identities=1, num_test_identities=6, dim=16,
                       mean_size=10, spread=0.5, low_quality_fraction=0.0,
                       seed=0)['test']


@pytest.fixture(scope='module')
def graph(split):
    return build_graph(split.x, KNNConfig(k=K), split.labels)


@pytest.fixture(scope='module')
def trained(graph, tmp_path_factory):
    r"""One trained method and its checkpoint per registered class."""
    cache = {}

    def get(name):
        key = get_method(name).name
        if key not in cache:
            path = tmp_path_factory.mktemp(key) / 'model.pt'
            cache[key] = train(graph, name, _learned(name), out=path), path
        return cache[key]
    return get


def _progress(method) -> int:
    r"""Steps done by the method and the ones it builds on."""
    return method.step + (0 if method.base is None else
                          _progress(method.base))


def _weights(method) -> dict[str, torch.Tensor]:
    weights = {}
    while method is not None:
        weights.update({f'{method.name}.{key}': value for key, value
                        in method.model.state_dict().items()})
        method = method.base
    return weights


def test_every_learned_method_has_small_settings():
    assert set(LEARNED_CLASSES) == set(LEARNED)


@pytest.mark.parametrize('name', LEARNED_CLASSES)
def test_resume_equals_an_uninterrupted_run(name, graph, trained, tmp_path):
    full, _ = trained(name)
    interrupted = build_method(name, _learned(name))
    half = tmp_path / 'half.pt'

    def save_and_stop():  # the first periodic checkpoint, then a crash
        save_checkpoint(half, interrupted, KNNConfig(k=K))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(graph, save=save_and_stop)
    saved = load_method(half, name)[0]
    assert 0 < _progress(saved) < _progress(full)
    resumed = train(graph, name, _learned(name), resume=half)
    assert resumed.step == full.step > 0 and resumed.trained
    expected = _weights(full)
    for key, value in _weights(resumed).items():
        torch.testing.assert_close(value, expected[key], atol=1e-6,
                                   rtol=1e-5, msg=key)


@pytest.mark.parametrize('name', LEARNED_CLASSES)
def test_periodic_saves_from_a_fresh_start(name, graph, tmp_path):
    saved = []
    method = build_method(name, _learned(name))
    method.fit(graph, save=lambda: saved.append(
        save_checkpoint(tmp_path / 'c.pt', method, KNNConfig(k=K))))
    assert len(saved) >= 1 and (tmp_path / 'c.pt').is_file()


def test_gcn_v_plus_e_saves_while_gcn_v_trains(graph, tmp_path):
    # Regression: the first periodic save came before GCN-E existed.
    params = {'gcn_v': {**GCN_V, 'train': {'steps': 4, 'save_every': 2}},
              'hidden_channels': 8, 'train': {'steps': 2, 'batch_size': 4}}
    method = train(graph, 'gcn-v+e', params, out=tmp_path / 've.pt')
    assert method.base.step == 4 and method.step == 2


@pytest.mark.parametrize('name', LEARNED_CLASSES)
def test_checkpoint_round_trip(name, graph, trained):
    method, path = trained(name)
    reloaded = make_method(name, checkpoint=path)
    assert reloaded.name == method.name and reloaded.trained
    assert reloaded.model_kwargs == method.model_kwargs
    np.testing.assert_array_equal(cluster(graph, reloaded).labels,
                                  cluster(graph, method).labels)


@pytest.mark.parametrize('name', TRAINABLE)
def test_untrained_method_says_so(name, graph):
    method = build_method(name, _learned(name))
    with pytest.raises(ValueError, match=re.escape(
            f"'{method.name}' has no trained {method.label} model")):
        method.predict(graph)
    with pytest.raises(ValueError, match='needs --checkpoint'):
        make_method(name)


@pytest.mark.parametrize('name', TRAINABLE)
def test_cli_round_trip(name, split, tmp_path):
    write_features(tmp_path / 'f.bin', split.x)
    write_labels(tmp_path / 'l.meta', split.labels)
    config = tmp_path / 'run.yaml'
    config.write_text(yaml.safe_dump({'method': name, 'knn': {'k': K},
                                      'params': _learned(name)}))
    common = ['--features', str(tmp_path / 'f.bin'), '--dim', '16',
              '--config', str(config), '--no-progress']
    assert main(['-q', 'train', name, '--labels', str(tmp_path / 'l.meta'),
                 *common, '--out', str(tmp_path / 'm.pt')]) == 0
    assert main(['-q', 'cluster', '--method', name, *common, '--checkpoint',
                 str(tmp_path / 'm.pt'), '--out',
                 str(tmp_path / 'pred.meta')]) == 0
    labels = read_labels(tmp_path / 'pred.meta')
    expected = make_method(name, checkpoint=tmp_path / 'm.pt').predict(
        build_graph(split.x, KNNConfig(k=K)))
    np.testing.assert_array_equal(labels, expected)


def _labels_twice(name, graph, trained):
    if get_method(name).trainable:
        first = trained(name)[0]
        second = train(graph, name, _learned(name))
    else:
        first = build_method(name, OTHERS.get(name))
        second = build_method(name, OTHERS.get(name))
    return cluster(graph, first).labels, cluster(graph, second).labels


@pytest.mark.parametrize('name', sorted(METHODS))
def test_same_seed_same_partition(name, graph, trained):
    labels, again = _labels_twice(name, graph, trained)
    np.testing.assert_array_equal(labels, again)
    assert labels.shape == (graph.num_nodes,) and labels.dtype == np.int64
    np.testing.assert_array_equal(np.unique(labels),
                                  np.arange(labels.max() + 1))
