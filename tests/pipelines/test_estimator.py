from dataclasses import dataclass

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.utils.estimator_checks import parametrize_with_checks

from ltc_pyg.cluster.merge import threshold_links
from ltc_pyg.config import KNNConfig
from ltc_pyg.graph.transforms import knn_to_edges
from ltc_pyg.metrics import evaluate
from ltc_pyg.pipelines.estimator import FaceClusterer
from ltc_pyg.pipelines.knn_threshold import KNNThreshold
from ltc_pyg.pipelines.methods import METHODS, ClusteringMethod, build_method
from ltc_pyg.pipelines.run import (
    best_threshold,
    build_graph,
    sweep_values,
    threshold_sweep,
)

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
    assert clusterer.n_features_in_ == 2 and clusterer.knn_ == KNN


def test_fit_on_features_equals_graph_and_predict_leaves_state():
    clusterer = FaceClusterer(params={'threshold': 0.99}, knn={'k': 3})
    from_features = clusterer.fit(X).labels_
    assert clusterer.report_['metrics'] is None
    graph = build_graph(X, KNN, Y)
    state = dict(vars(clusterer))
    assert clusterer.predict(graph).tolist() == from_features.tolist()
    assert vars(clusterer).keys() == state.keys()
    assert clusterer.labels_ is state['labels_']
    # {0, 5} | {15} | {90, 95} | {180}: 4 of the 8 true ordered pairs.
    assert from_features.tolist() == [0, 0, 1, 2, 2, 3]
    assert clusterer.fit(graph).report_['metrics']['pairwise_recall'] == 0.5
    # Lists work like arrays.
    assert clusterer.fit(X.tolist()).labels_.tolist() == [0, 0, 1, 2, 2, 3]


def test_param_changes_take_effect_at_the_next_fit():
    clusterer = FaceClusterer(params={'threshold': 0.5}, knn=KNN)
    assert clusterer.fit_predict(X).tolist() == [0, 0, 0, 1, 1, 2]
    clusterer.set_params(params={'threshold': 0.99})
    assert clusterer.fit_predict(X).tolist() == [0, 0, 1, 2, 2, 3]
    clusterer.set_params(method='constant-free', params=None)
    with pytest.raises(ValueError, match="Unknown method 'constant-free'"):
        clusterer.fit(X)


def test_learned_method_fit_save_and_reload(tmp_path, registered):
    clusterer = FaceClusterer('linker', knn=KNN)
    assert clusterer.trainable
    assert clusterer.fit(X, Y) is clusterer
    # k=3: node 0 sees 5 and 15 degrees, so cos 15 deg is the lowest.
    assert clusterer.method_.learned == pytest.approx(np.cos(np.deg2rad(15)),
                                                      abs=1e-6)
    # Its tau is left None: training chose one on the training graph, the
    # best pairwise F of a sweep there.
    assert [stage['name'] for stage in clusterer.train_report_['stages']][
        -2:] == ['train', 'threshold on the training split']
    sweep = threshold_sweep(clusterer.graph_, clusterer.method_)
    assert clusterer.method_.trained_threshold == best_threshold(sweep)
    assert clusterer.labels_.tolist() == [0, 0, 0, 1, 1, 2]
    # The report covers the kNN search and training too.
    stages = [stage['name'] for stage in clusterer.report_['stages']]
    assert stages[:3] == ['normalise features', 'kNN', 'train']
    labels = clusterer.predict(X)
    assert labels.tolist() == [0, 0, 0, 1, 1, 2]
    clusterer.save(tmp_path / 'linker.ckpt')
    # Without knn the checkpoint's graph (k=3) is used, not k=80 (capped
    # at the 6 samples).
    reloaded = FaceClusterer('linker', checkpoint=tmp_path / 'linker.ckpt')
    assert reloaded.fit(X).labels_.tolist() == labels.tolist()
    assert reloaded.knn_.k == 3 and reloaded.report_['knn_k'] == 3
    override = FaceClusterer('linker', {'tau': 0.99},
                             checkpoint=tmp_path / 'linker.ckpt', knn=KNN)
    assert override.fit_predict(X).tolist() == [0, 0, 1, 2, 2, 3]
    with pytest.raises(ValueError, match=r"trained on a kNN graph with k=3, "
                       r"method='auto'; k=5 conflicts"):
        FaceClusterer('linker', checkpoint=tmp_path / 'linker.ckpt',
                      knn={'k': 5}).fit(X)
    # A graph with longer rows is cut to the trained k; shorter ones fail.
    assert reloaded.predict(build_graph(X, KNNConfig(k=5))).tolist() == (
        labels.tolist())
    with pytest.raises(ValueError, match='trained with k=3 but the graph '
                       'has kNN rows of k=2'):
        reloaded.predict(build_graph(X, KNNConfig(k=2)))


def test_errors(registered):
    with pytest.raises(ValueError, match="Unknown method 'nope'"):
        FaceClusterer('nope').fit(X)
    with pytest.raises(ValueError, match="'linker' is a learned method: fit "
                       r'it with labels \(y\) or give a checkpoint'):
        FaceClusterer('linker', knn=KNN).fit(X)
    with pytest.raises(NotFittedError):
        FaceClusterer('linker', knn=KNN).predict(X)
    with pytest.raises(ValueError, match='not with a prebuilt graph'):
        FaceClusterer(knn=KNN).fit(build_graph(X, KNN), Y)
    with pytest.raises(ValueError, match='Got 5 labels for 6 nodes'):
        FaceClusterer(knn=KNN).fit(X, Y[:5])
    with pytest.raises(ValueError, match="Unknown keys for knn: \\['kk'\\]"):
        FaceClusterer(knn={'kk': 5}).fit(X)
    with pytest.raises(ValueError, match="Unknown device 'gpu'"):
        FaceClusterer(device='gpu').fit(X)
    fitted = FaceClusterer(knn=KNN).fit(X)
    with pytest.raises(ValueError, match='X has 3 features, but '
                       'FaceClusterer is expecting 2'):
        fitted.predict(np.ones((4, 3)))


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


def test_sweep_values():
    graph = build_graph(X, KNN, Y)
    # Nearest-other similarities: cos 5 deg (x4), cos 10 deg, cos 85 deg.
    nearest = graph.knn_similarity[:, 1:2]
    low, high = np.quantile(nearest.double().numpy(), [0.02, 0.98])
    values = sweep_values(nearest, num_values=5)
    assert values.tolist() == np.round(np.linspace(low, high, 5), 4).tolist()
    assert high == pytest.approx(np.cos(np.deg2rad(5)), abs=1e-6)
    wider = sweep_values(nearest, num_values=3, include=0.95)
    assert wider.tolist() == np.round([low, (low + 0.999) / 2, 0.999],
                                      4).tolist()
    assert sweep_values(nearest, 2, include=0.0)[0] == -0.1
    # Undefined similarities (no peak) are left out.
    with_nan = torch.tensor([[0.2, float('nan')], [0.4, 0.6]])
    assert sweep_values(with_nan, 3).tolist() == np.round(np.quantile(
        [0.2, 0.4, 0.6], [0.02, 0.5, 0.98]), 4).tolist()
    with pytest.raises(ValueError, match='k >= 2'):
        sweep_values(graph.knn_similarity[:, 1:1])


def test_best_threshold_skips_undefined_scores():
    sweep = {'values': [0.1, 0.2, 0.3],
             'metrics': [{'pairwise_fscore': float('nan')},
                         {'pairwise_fscore': 0.4},
                         {'pairwise_fscore': None}]}
    assert best_threshold(sweep) == 0.2


def test_clone_and_params():
    clusterer = FaceClusterer('cdp', {'threshold': 0.5}, knn={'k': 3},
                              seed=3)
    copy = clone(clusterer)
    assert copy.get_params() == clusterer.get_params()
    assert copy.get_params()['params'] == {'threshold': 0.5}
    # sklearn's repr lists the parameters that differ from the defaults.
    assert repr(FaceClusterer('cdp', knn={'k': 3})) == (
        "FaceClusterer(knn={'k': 3}, method='cdp')")


def pairwise_f(labels_true, labels_pred):
    # All singletons leave the precision undefined (NaN): score them 0.
    return np.nan_to_num(evaluate(labels_true, labels_pred)[
        'pairwise_fscore'])


def test_grid_search_picks_the_threshold():
    # Three tight identities on the unit circle, 10 samples each.
    gen = np.random.default_rng(0)
    angles = np.repeat([0., 2., 4.], 10) + gen.normal(0, 0.05, 30)
    x = np.stack([np.cos(angles), np.sin(angles)], 1)
    y = np.repeat([0, 1, 2], 10)
    search = GridSearchCV(
        FaceClusterer(knn={'k': 5}),
        {'params': [{'threshold': t} for t in (-0.5, 0.9, 0.99999)]},
        scoring=make_scorer(pairwise_f), cv=KFold(3, shuffle=True,
                                                  random_state=0))
    search.fit(x, y)
    assert search.best_params_ == {'params': {'threshold': 0.9}}
    assert search.cv_results_['mean_test_score'].tolist()[1] == 1.0


# predict() clusters the samples it is given jointly, on their own kNN
# graph (transductive), so these sklearn checks do not apply.
TRANSDUCTIVE = ('predict clusters its samples jointly on their kNN graph, '
                'so the labels of a subset or a reordering are not a slice '
                'or a permutation of the whole set\'s label ids')
EXPECTED_FAILED_CHECKS = {
    'check_estimators_dtypes': 'its integer inputs have all-zero rows, which '
    'have no direction for cosine similarity (rejected with a message that '
    'names the rows)',
    'check_methods_subset_invariance': TRANSDUCTIVE,
    'check_methods_sample_order_invariance': TRANSDUCTIVE,
}


@parametrize_with_checks([FaceClusterer(knn={'k': 5}, progress_bar=False)],
                         expected_failed_checks=lambda estimator:
                         EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible(estimator, check):
    check(estimator)
