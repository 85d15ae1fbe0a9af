from dataclasses import dataclass

import numpy as np
import pytest
import torch

from ltc_pyg.config import KNNConfig
from ltc_pyg.pipelines.checkpoint import (
    is_original_checkpoint,
    load_method,
    read_checkpoint,
)
from ltc_pyg.pipelines.methods import METHODS, ClusteringMethod, get_method
from ltc_pyg.pipelines.run import build_graph, cluster, make_method, train


@dataclass(frozen=True)
class ToyParams:
    scale: float = 1.0


class ToyMethod(ClusteringMethod):
    r"""Learns one number: the mean label; predicts it for every node."""
    name = 'toy'
    Params = ToyParams
    trainable = True

    def fit(self, graph, timer=None, save=None):
        self.weight = torch.tensor([float(graph.y.float().mean())])
        save()

    def predict(self, graph, timer=None):
        assert 'y' not in graph  # labels never reach predict
        self.seen = graph
        return np.zeros(graph.num_nodes, dtype=np.int64)

    def state_dict(self):
        return {'weight': self.weight}

    def load_state_dict(self, state):
        self.weight = state['weight']

    def load_original_state_dict(self, state_dict):
        self.weight = state_dict['w'] * 10


@pytest.fixture
def toy_registered(monkeypatch):
    monkeypatch.setitem(METHODS, 'toy', f'{__name__}:ToyMethod')


X = np.array([[1, 0], [.9, .1], [0, 1], [.1, .9]], np.float32)


def test_registry_lookup():
    assert get_method('knn-threshold').name == 'knn-threshold'
    with pytest.raises(ValueError, match="Unknown method 'nope'"):
        get_method('nope')


def test_params_are_checked(toy_registered):
    assert ToyMethod({'scale': 2}).params == ToyParams(2.0)
    with pytest.raises(ValueError, match=r"Unknown keys for toy params: "
                       r"\['scal'\]"):
        ToyMethod({'scal': 2})
    with pytest.raises(TypeError, match='toy expects ToyParams'):
        ToyMethod(KNNConfig())


def test_train_save_and_load(tmp_path, toy_registered):
    graph = build_graph(X, KNNConfig(k=2), labels=np.array([0, 0, 1, 3]))
    path = tmp_path / 'toy.ckpt'
    trained = train(graph, 'toy', {'scale': 3.0}, out=path,
                    knn=KNNConfig(k=2))
    assert trained.weight.item() == 1.0
    payload = read_checkpoint(path)
    assert payload['format'] == 'ltc_pyg' and payload['method'] == 'toy'
    assert not is_original_checkpoint(payload)
    method, knn = load_method(path, 'toy')
    assert method.weight.item() == 1.0 and method.params.scale == 3.0
    assert knn == KNNConfig(k=2)
    with pytest.raises(ValueError, match="holds a 'toy' model, not "
                       "'knn-threshold'"):
        load_method(path, 'knn-threshold')


def test_original_checkpoint_is_detected(tmp_path, toy_registered):
    path = tmp_path / 'orig.pth'
    torch.save({'meta': {'epoch': 1}, 'state_dict': {'w': torch.ones(1)}},
               path)
    method, knn = load_method(path, 'toy')
    assert method.weight.item() == 10.0 and knn is None


def test_bad_checkpoints(tmp_path, toy_registered):
    (tmp_path / 'junk.pth').write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='junk.pth is not a readable'):
        load_method(tmp_path / 'junk.pth', 'toy')
    with pytest.raises(FileNotFoundError, match='none.pth'):
        load_method(tmp_path / 'none.pth', 'toy')


def test_learned_method_needs_checkpoint(toy_registered):
    with pytest.raises(ValueError, match='needs --checkpoint'):
        make_method('toy')


def test_cluster_hides_labels_and_reports(toy_registered):
    graph = build_graph(X, KNNConfig(k=2), labels=np.array([0, 0, 1, 1]))
    method = ToyMethod()
    result = cluster(graph, method, knn=KNNConfig(k=2))
    assert result.labels.tolist() == [0, 0, 0, 0]
    report = result.report
    assert report['num_clusters'] == 1 and report['num_nodes'] == 4
    assert report['metrics']['pairwise_recall'] == 1.0
    assert report['metrics']['pairwise_precision'] == pytest.approx(4 / 12)
    assert [s['name'] for s in report['stages']] == ['evaluate']
    assert 'y' in graph  # the caller's graph keeps its labels
    assert method.seen.x is graph.x  # nothing was copied to hide them


def test_build_graph_fails_before_knn_on_bad_labels():
    with pytest.raises(ValueError, match='Got 3 labels for 4 nodes'):
        build_graph(X, labels=np.array([0, 1, 2]))


def test_untrainable_method_refuses_fit():
    graph = build_graph(X, KNNConfig(k=2), labels=np.zeros(4, np.int64))
    with pytest.raises(ValueError, match="'knn-threshold' has nothing to "
                       "train"):
        train(graph, 'knn-threshold')
