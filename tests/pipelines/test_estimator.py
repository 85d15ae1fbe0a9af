from dataclasses import dataclass

import numpy as np
import pytest
from torch_geometric.data import Data

from ltc_pyg.cluster.merge import threshold_links
from ltc_pyg.config import KNNConfig
from ltc_pyg.graph.transforms import knn_to_edges
from ltc_pyg.pipelines.estimator import (
    FaceClusterer,
    default_sweep_values,
    threshold_sweep,
)
from ltc_pyg.pipelines.knn_threshold import KNNThreshold
from ltc_pyg.pipelines.methods import METHODS, ClusteringMethod, build_method
from ltc_pyg.pipelines.run import build_graph

# Unit vectors at these angles: A = {0, 5, 15} degrees, B = {90, 95},
# C = {180}. Cosines: 5 deg 0.99619, 10 deg 0.98481, 15 deg 0.96593.
ANGLES = np.deg2rad([0., 5., 15., 90., 95., 180.])
X = np.stack([np.cos(ANGLES), np.sin(ANGLES)], 1).astype(np.float32)
Y = np.array([0, 0, 0, 1, 1, 2])
KNN = KNNConfig(k=3)


@dataclass(frozen=True)
class LinkerParams:
    tau: float | None = None


class Linker(ClusteringMethod):
    r"""Learns the lowest kNN similarity inside one identity and links
    edges at or above it (or at ``tau`` when set)."""
    name = 'linker'
    Params = LinkerParams
    trainable = True

    def fit(self, graph, timer=None, save=None):
        edge_index, edge_weight = knn_to_edges(graph.knn_neighbor,
                                               graph.knn_similarity)
        same = graph.y[edge_index[0]] == graph.y[edge_index[1]]
        self.learned = float(edge_weight[same].min())

    def predict(self, graph, timer=None):
        tau = self.learned if self.params.tau is None else self.params.tau
        return threshold_links(*knn_to_edges(graph.knn_neighbor,
                                             graph.knn_similarity),
                               graph.num_nodes, tau)

    def state_dict(self):
        return {'learned': self.learned}

    def load_state_dict(self, state):
        self.learned = state['learned']


class Constant(ClusteringMethod):
    r"""One cluster; no parameters."""
    name = 'constant'

    def predict(self, graph, timer=None):
        return np.zeros(graph.num_nodes, dtype=np.int64)


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(METHODS, 'linker', f'{__name__}:Linker')
    monkeypatch.setitem(METHODS, 'constant', f'{__name__}:Constant')


def test_fit_predict_knn_threshold():
    clusterer = FaceClusterer(params={'threshold': 0.5}, knn=KNN)
    labels = clusterer.fit_predict(X, Y)
    assert labels.tolist() == [0, 0, 0, 1, 1, 2]
    assert clusterer.labels_ is labels
    report = clusterer.report_
    assert report['metrics']['pairwise_fscore'] == 1.0
    assert report['num_clusters'] == 3 and report['knn_k'] == 3
    assert report['params']['threshold'] == 0.5
    assert clusterer.graph_.num_nodes == 6


def test_predict_on_features_equals_graph():
    clusterer = FaceClusterer(params={'threshold': 0.99}, knn=KNN)
    from_features = clusterer.predict(X)
    assert clusterer.report_['metrics'] is None
    graph = build_graph(X, KNN, Y)
    assert clusterer.predict(graph).tolist() == from_features.tolist()
    # {0, 5} | {15} | {90, 95} | {180}: 4 of the 8 true ordered pairs.
    assert from_features.tolist() == [0, 0, 1, 2, 2, 3]
    assert clusterer.report_['metrics']['pairwise_recall'] == 0.5


def test_learned_method_fit_save_and_reload(tmp_path, registered):
    clusterer = FaceClusterer('linker', knn=KNN)
    assert clusterer.trainable
    assert clusterer.fit(X, Y) is clusterer
    # k=3: node 0 sees 5 and 15 degrees, so cos 15 deg is the lowest.
    assert clusterer.method_.learned == pytest.approx(np.cos(np.deg2rad(15)),
                                                      abs=1e-6)
    assert clusterer.train_report_['stages'][-1]['name'] == 'train'
    labels = clusterer.predict(X)
    assert labels.tolist() == [0, 0, 0, 1, 1, 2]
    clusterer.save(tmp_path / 'linker.ckpt')
    reloaded = FaceClusterer('linker', checkpoint=tmp_path / 'linker.ckpt',
                             knn=KNN)
    assert reloaded.predict(X).tolist() == labels.tolist()
    override = FaceClusterer('linker', {'tau': 0.99},
                             checkpoint=tmp_path / 'linker.ckpt', knn=KNN)
    assert override.predict(X).tolist() == [0, 0, 1, 2, 2, 3]


def test_errors(registered):
    with pytest.raises(ValueError, match="Unknown method 'nope'"):
        FaceClusterer('nope')
    with pytest.raises(ValueError, match="Training 'linker' needs labels "
                       'for the 6 samples'):
        FaceClusterer('linker', knn=KNN).fit(X)
    with pytest.raises(ValueError, match="'linker' is a learned method and "
                       'needs --checkpoint'):
        FaceClusterer('linker', knn=KNN).predict(X)
    with pytest.raises(ValueError, match='not with a prebuilt graph'):
        FaceClusterer(knn=KNN).predict(build_graph(X, KNN), Y)
    with pytest.raises(ValueError, match='Got 5 labels for 6 nodes'):
        FaceClusterer(knn=KNN).predict(X, Y[:5])


def test_threshold_name(registered):
    assert KNNThreshold().threshold_name == 'threshold'
    assert Linker().threshold_name == 'tau'
    assert Constant().threshold_name is None
    # Rank-order distances are not similarities: no similarity sweep.
    assert build_method('aro').threshold_name is None
    assert build_method('cdp').threshold_name == 'threshold'
    # GCN-V cuts GCN-feature similarities (tau) or input ones (tau_0).
    assert build_method('gcn-v').threshold_name == 'tau'
    assert build_method(
        'gcn-v', {'use_gcn_feat': False}).threshold_name == 'tau_0'


def test_threshold_sweep_values_and_metrics(registered):
    graph = build_graph(X, KNN, Y)
    method = KNNThreshold({'threshold': 0.3})
    sweep = threshold_sweep(graph, method, values=np.array([0.5, 0.99]))
    assert sweep['param'] == 'threshold' and sweep['values'] == [0.5, 0.99]
    assert sweep['metrics'][0]['pairwise_fscore'] == 1.0
    assert sweep['metrics'][1]['pairwise_precision'] == 1.0
    assert sweep['metrics'][1]['pairwise_fscore'] == pytest.approx(2 / 3)
    assert method.params.threshold == 0.3  # left unchanged
    assert threshold_sweep(graph, Constant()) is None
    trained = Linker()
    trained.learned = 0.0
    tau_sweep = threshold_sweep(graph, trained, values=np.array([0.99]))
    assert tau_sweep['param'] == 'tau'
    assert tau_sweep['metrics'][0]['pairwise_recall'] == 0.5
    with pytest.raises(ValueError, match='needs the true labels'):
        threshold_sweep(build_graph(X, KNN), method)


def test_default_sweep_values():
    graph = build_graph(X, KNN, Y)
    # Nearest-other similarities: cos 5 deg (x4), cos 10 deg, cos 85 deg.
    low, high = np.quantile(graph.knn_similarity[:, 1].double().numpy(),
                            [0.02, 0.98])
    values = default_sweep_values(graph, num_values=5)
    assert values.tolist() == np.round(np.linspace(low, high, 5), 4).tolist()
    assert high == pytest.approx(np.cos(np.deg2rad(5)), abs=1e-6)
    wider = default_sweep_values(graph, num_values=3, include=0.95)
    assert wider.tolist() == np.round([low, (low + 0.999) / 2, 0.999],
                                      4).tolist()
    assert default_sweep_values(graph, 2, include=0.0)[0] == -0.1
    with pytest.raises(ValueError, match='k >= 2'):
        default_sweep_values(Data(knn_similarity=graph.knn_similarity[:, :1]))


def test_repr():
    assert repr(FaceClusterer(knn=KNN)) == (
        "FaceClusterer(method='knn-threshold', params=None, "
        "knn=KNNConfig(k=3, method='flat', num_lists=None, num_probes=64, "
        "ef_search=256, hnsw_m=32), device='cpu', seed=0)")
