import json

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from ltc_pyg.baselines import similarity_to_distance
from ltc_pyg.cluster.merge import threshold_links
from ltc_pyg.cluster.threshold import graph_threshold
from ltc_pyg.config import KNNConfig
from ltc_pyg.data.io import read_labels, write_features, write_labels
from ltc_pyg.data.synthetic import make_splits
from ltc_pyg.graph.transforms import knn_to_edges
from ltc_pyg.pipelines.cli import main
from ltc_pyg.pipelines.methods import METHODS, build_method
from ltc_pyg.pipelines.run import build_graph

BASELINES = sorted(name for name, target in METHODS.items()
                   if target.startswith('ltc_pyg.pipelines.baselines:'))
# Baselines with a 'k' parameter (kNN columns used).
WITH_K = ['spectral', 'knn-dbscan', 'fast-hac', 'aro', 'chinese-whispers',
          'cdp', 'infomap']
# Parameters read from the data when left out, per method.
CHOSEN = {
    'kmeans': ['n_clusters'], 'minibatch-kmeans': ['n_clusters'],
    'spectral': ['n_clusters'], 'meanshift': ['threshold', 'bandwidth'],
    'knn-dbscan': ['threshold', 'eps'], 'fast-hac': ['threshold', 'distance'],
    'aro': [], 'chinese-whispers': ['threshold'], 'cdp': ['threshold'],
    'infomap': ['threshold'],
}
# Mean-shift scans every sample per seed: few seeds keep the test fast.
FAST = {'meanshift': {'num_seeds': 4}}

# Unit vectors at 0, 10, 20 and 90, 100, 110 degrees; k=4 links the arcs.
ANGLE = np.deg2rad([0, 10, 20, 90, 100, 110])
TWO_ARCS = build_graph(np.stack([np.cos(ANGLE), np.sin(ANGLE)], axis=1),
                       KNNConfig(k=4))


@pytest.fixture(scope='module')
def graph():
    split = make_splits(num_train_identities=1, num_test_identities=20,
                        dim=16, mean_size=10, spread=0.5,
                        low_quality_fraction=0.0, seed=0)['test']
    return build_graph(split.x, KNNConfig(k=10))


def test_every_baseline_is_registered():
    assert BASELINES == sorted(CHOSEN)


@pytest.mark.parametrize('name', BASELINES)
def test_labels_cover_every_node_and_defaults_come_from_the_data(name,
                                                                 graph):
    method = build_method(name, FAST.get(name))
    labels = method.predict(graph)
    assert labels.dtype == np.int64 and labels.shape == (graph.num_nodes,)
    assert np.unique(labels).tolist() == list(range(labels.max() + 1))

    described = method.describe()
    used = {key[:-len('_used')]: value for key, value in described.items()
            if key.endswith('_used')}
    assert sorted(used) == sorted(CHOSEN[name])
    # Infomap and Chinese Whispers split communities themselves.
    rule = 'flow' if name in ('infomap', 'chinese-whispers') else \
        'components'
    threshold = graph_threshold(graph.knn_neighbor, graph.knn_similarity,
                                rule)
    if 'threshold' in used:
        assert used['threshold'] == threshold
    if 'n_clusters' in used:
        edge_index, edge_weight = knn_to_edges(graph.knn_neighbor,
                                               graph.knn_similarity)
        components = threshold_links(edge_index, edge_weight,
                                     graph.num_nodes, threshold)
        # Components of two or more nodes; singletons are outliers.
        assert used['n_clusters'] == (np.bincount(components) >= 2).sum()
    for key in ('bandwidth', 'distance'):
        if key in used:
            assert used[key] == pytest.approx(
                similarity_to_distance(threshold))
    if 'eps' in used:
        assert used['eps'] == pytest.approx(1 - threshold)


def test_given_values_are_kept():
    method = build_method('cdp', {'threshold': 0.5})
    method.predict(TWO_ARCS)
    described = method.describe()
    assert described['threshold'] == 0.5
    assert not any(key.endswith('_used') for key in described)


@pytest.mark.parametrize('name, params', [
    ('kmeans', None), ('minibatch-kmeans', None), ('spectral', None),
    ('meanshift', {'bandwidth': 0.5}), ('knn-dbscan', None),
    ('fast-hac', None), ('fast-hac', {'linkage': 'average', 'distance': .5}),
    ('fast-hac', {'dense': True, 'distance': 0.5}), ('aro', None),
    ('chinese-whispers', None), ('cdp', None), ('cdp', {'max_size': 3}),
    ('infomap', None), ('infomap', {'temperature': 0.1}),
])
def test_two_arcs(name, params):
    # The nearest-neighbour similarity is cos(10 deg) everywhere, so the
    # data's threshold links each arc and n_clusters defaults to 2. Average
    # and dense linkage need a distance off that knife edge.
    labels = build_method(name, params).predict(TWO_ARCS)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]


def test_k_cuts_the_knn_columns():
    # All four columns link the arcs at threshold 0; two columns do not.
    assert build_method('cdp', {'threshold': 0.0}).predict(
        TWO_ARCS).tolist() == [0] * 6
    assert build_method('cdp', {'threshold': 0.0, 'k': 2}).predict(
        TWO_ARCS).tolist() == [0, 0, 0, 1, 1, 1]


def test_noise_becomes_singletons():
    # DBSCAN noise (-1) is numbered after the clusters.
    graph = Data(x=torch.zeros(4, 2), num_nodes=4,
                 knn_neighbor=torch.tensor([[0, 1, 2], [1, 0, 2], [2, 1, 0],
                                            [3, 0, 1]]),
                 knn_similarity=torch.tensor([[1., .75, .25],
                                              [1., .75, .75],
                                              [1., .75, .25],
                                              [1., .25, .25]]))
    method = build_method('knn-dbscan', {'eps': 0.25, 'min_samples': 3})
    assert method.predict(graph).tolist() == [0, 0, 0, 1]


@pytest.mark.parametrize('name', BASELINES)
def test_unknown_params_fail(name):
    with pytest.raises(ValueError, match=rf"Unknown keys for {name} params: "
                       r"\['nope'\]"):
        build_method(name, {'nope': 1})


@pytest.mark.parametrize('name', WITH_K)
def test_k_beyond_the_graph_fails(name):
    method = build_method(name, {'k': 5})
    with pytest.raises(ValueError, match=rf"'{name}' asks for k=5 but the "
                       r'kNN graph has 4 columns; build it with knn.k >= 5'):
        method.predict(TWO_ARCS)


@pytest.mark.parametrize('name, params, error, match', [
    ('kmeans', {'n_clusters': 0}, ValueError,
     r'n_clusters must be >= 1 \(got 0\)'),
    ('minibatch-kmeans', {'batch_size': 0}, ValueError,
     r'batch_size must be >= 1 \(got 0\)'),
    ('spectral', {'min_similarity': -0.5}, ValueError,
     r'min_similarity must be \[0.0, 1.0\] \(got -0.5\)'),
    ('spectral', {'assign_labels': 'qr'}, ValueError,
     r'assign_labels must be one of'),
    ('meanshift', {'bandwidth': 0}, ValueError,
     r'bandwidth must be positive \(got 0.0\)'),
    ('knn-dbscan', {'eps': 2.5}, ValueError,
     r'eps must be \[0.0, 2.0\] \(got 2.5\)'),
    ('knn-dbscan', {'min_samples': 0}, ValueError,
     r'min_samples must be >= 1 \(got 0\)'),
    ('fast-hac', {'linkage': 'complete'}, ValueError,
     r'linkage must be one of'),
    ('fast-hac', {'distance': -1}, ValueError,
     r'distance must be \[0.0, 2.0\] \(got -1.0\)'),
    ('aro', {'max_distance': -1}, ValueError,
     r'max_distance must be >= 0.0 \(got -1.0\)'),
    ('aro', {'k': 1}, ValueError, r'k must be >= 2 \(got 1\)'),
    ('chinese-whispers', {'update_fraction': 0}, ValueError,
     r'update_fraction must be \[1e-09, 1.0\] \(got 0.0\)'),
    ('chinese-whispers', {'num_iterations': -1}, ValueError,
     r'num_iterations must be >= 0 \(got -1\)'),
    ('cdp', {'threshold': 1.5}, ValueError,
     r'threshold must be \[-1.0, 1.0\] \(got 1.5\)'),
    ('cdp', {'max_size': 0}, ValueError, r'max_size must be >= 1 \(got 0\)'),
    ('cdp', {'pool': 'min'}, ValueError, r'pool must be one of'),
    ('cdp', {'threshold': 'high'}, TypeError, r'threshold'),
    ('infomap', {'temperature': 0}, ValueError,
     r'temperature must be positive \(got 0.0\)'),
    ('infomap', {'prune_fraction': 1}, ValueError,
     r'prune_fraction must be in \[0, 1\) \(got 1.0\)'),
    ('infomap', {'num_trials': 0}, ValueError,
     r'num_trials must be >= 1 \(got 0\)'),
])
def test_params_are_checked(name, params, error, match):
    with pytest.raises(error, match=match):
        build_method(name, params)


def test_dense_hac_refused_above_the_memory_limit():
    method = build_method('fast-hac', {'dense': True, 'max_memory_gb': 1e-9})
    with pytest.raises(ValueError, match=r'Dense HAC of 6 samples needs 0.0 '
                       r'GiB for its distance matrix \(limit 1e-09 GiB\)'):
        method.predict(TWO_ARCS)


def test_cluster_command_writes_labels_and_report(tmp_path):
    split = make_splits(num_train_identities=1, num_test_identities=12,
                        dim=16, mean_size=10, spread=0.5,
                        low_quality_fraction=0.0, seed=0)['test']
    write_features(tmp_path / 'features.bin', split.x)
    write_labels(tmp_path / 'labels.meta', split.labels)
    pred, report = tmp_path / 'pred.meta', tmp_path / 'report.json'
    assert main(['-q', 'cluster', '--method', 'cdp', '--features',
                 str(tmp_path / 'features.bin'), '--dim', '16', '--k', '10',
                 '--labels', str(tmp_path / 'labels.meta'), '--param',
                 'max_size=30', '--out', str(pred), '--report',
                 str(report)]) == 0
    labels = read_labels(pred, num_nodes=len(split.labels))
    written = json.loads(report.read_text())
    assert written['method'] == 'cdp'
    assert written['params']['max_size'] == 30
    assert written['params']['threshold'] is None
    assert 0 < written['params']['threshold_used'] < 1
    assert written['knn_k'] == 10
    assert written['num_clusters'] == len(np.unique(labels))
    assert np.bincount(labels).max() <= 30
    assert [s['name'] for s in written['stages']] == [
        'read features', 'normalise features', 'kNN', 'cdp', 'evaluate',
        'write']
    assert written['metrics']['pairwise_fscore'] > 0.5
