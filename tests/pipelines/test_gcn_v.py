import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.testing import withPackage

from ltc_pyg.cluster.peaks import confidence_to_peaks, peaks_to_labels
from ltc_pyg.config import KNNConfig, load_config
from ltc_pyg.data.io import (
    read_features,
    read_labels,
)
from ltc_pyg.data.synthetic import make_splits
from ltc_pyg.graph.sparse import gcn_adjacency
from ltc_pyg.pipelines import gcn_v as gcn_v_module
from ltc_pyg.pipelines.checkpoint import read_checkpoint
from ltc_pyg.pipelines.cli import main
from ltc_pyg.pipelines.methods import build_method
from ltc_pyg.pipelines.run import (
    best_threshold,
    build_graph,
    cluster,
    make_method,
    sweep_values,
    threshold_sweep,
    train,
)

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
SMALL = {'hidden_channels': 16, 'tau': 0.5, 'tau_0': 0.5,
         'train': {'steps': 4, 'lr': 0.05, 'batch_size': 30}}


@pytest.fixture(scope='module')
def split():
    return make_splits(num_train_identities=1, num_test_identities=8, dim=16,
                       mean_size=12, spread=0.5, low_quality_fraction=0.0,
                       seed=0)['test']


@pytest.fixture(scope='module')
def graph(split):
    return build_graph(split.x, KNNConfig(k=8), split.labels)


def test_gcn_v_uses_input_knn_without_gcn_feat(graph, tmp_path):
    method = train(graph, 'gcn-v', {**SMALL, 'use_gcn_feat': False})
    confidence, _ = method.infer(graph)
    expected = peaks_to_labels(confidence_to_peaks(
        graph.knn_neighbor, graph.knn_similarity, confidence), 0.5)
    np.testing.assert_array_equal(method.predict(graph), expected)


def test_gcn_feature_knn_rerank_and_search_agree_on_small_graphs(graph):
    method = train(graph, 'gcn-v', SMALL)
    _, hidden = method.infer(graph)
    neighbor, similarity = method.gcn_feature_knn(graph, hidden)
    assert (neighbor[:, 0] == torch.arange(graph.num_nodes)).all()
    assert (similarity[:, :-1] >= similarity[:, 1:] - 1e-6).all()
    rerank = build_method('gcn-v', {**SMALL, 'gcn_feat_knn': 'rerank'})
    rerank.model = method.model
    neighbor_r, similarity_r = rerank.gcn_feature_knn(graph, hidden)
    assert neighbor_r.shape == neighbor.shape
    assert (similarity_r[:, :-1] >= similarity_r[:, 1:]).all()
    too_many = build_method('gcn-v', {**SMALL, 'gcn_feat_knn': 'rerank',
                                      'gcn_feat_k': 9})
    with pytest.raises(ValueError, match='cannot give gcn_feat_k=9'):
        too_many.gcn_feature_knn(graph, hidden)


def test_gcn_e_builds_on_gcn_v_and_saves_both(graph, tmp_path):
    train(graph, 'gcn-v', SMALL, out=tmp_path / 'v.pt')
    params = {'gcn_v': SMALL, 'gcn_v_checkpoint': str(tmp_path / 'v.pt'),
              'hidden_channels': 8, 'tau': 0.5, 'ignore_ratio': 0.5,
              'train_ignore_ratio': 0.5,
              'train': {'steps': 3, 'optimizer': 'adam', 'lr': 1e-3,
                        'batch_size': 4}}
    method = train(graph, 'gcn-e', params, out=tmp_path / 've.pt')
    assert method.name == 'gcn-v+e' and method.step == 3
    payload = read_checkpoint(tmp_path / 've.pt')
    assert payload['method'] == 'gcn-v+e'
    assert payload['state']['gcn_v']['step'] == 4
    # One file of ours is enough; the GCN-V path is not needed any more.
    (tmp_path / 'v.pt').unlink()
    loaded = make_method('gcn-v+e', checkpoint=tmp_path / 've.pt')
    labels = cluster(graph, loaded).labels
    np.testing.assert_array_equal(labels, method.predict(graph))
    with pytest.raises(ValueError, match="holds a 'gcn-v\\+e' model, not "
                       "'gcn-v'"):
        make_method('gcn-v', checkpoint=tmp_path / 've.pt')


@pytest.mark.parametrize('use_gcn_feat', [False, True])
def test_gcn_e_shares_gcn_vs_adjacency_when_it_reads_the_same_graph(
        graph, tmp_path, monkeypatch, use_gcn_feat):
    # Without GCN features GCN-E walks the kNN graph GCN-V walks: the
    # adjacency is built once (with them, GCN-E's graph is its own).
    gcn_v = {**SMALL, 'use_gcn_feat': use_gcn_feat}
    params = {'gcn_v': gcn_v, 'hidden_channels': 8, 'tau': 0.5,
              'ignore_ratio': 0.5, 'train': {'steps': 2, 'batch_size': 4}}
    train(graph, 'gcn-v+e', params, out=tmp_path / 've.pt')
    method = make_method('gcn-v+e', params, checkpoint=tmp_path / 've.pt')
    built = []

    def counted(*args, **kwargs):
        built.append(args[1].shape)
        return gcn_adjacency(*args, **kwargs)

    monkeypatch.setattr(gcn_v_module, 'gcn_adjacency', counted)
    labels = method.predict(graph)
    assert len(built) == (2 if use_gcn_feat else 1)
    assert labels.shape == (graph.num_nodes,) and labels.max() > 0


def test_sweeps_run_the_model_once_with_the_same_metrics(graph, tmp_path):
    # GCN-V and GCN-V+E sweep their threshold on peaks computed once; each
    # value must score as a full clustering at that value does.
    train(graph, 'gcn-v', SMALL, out=tmp_path / 'v.pt')
    gcn_v = make_method('gcn-v', checkpoint=tmp_path / 'v.pt')
    gcn_e = train(graph, 'gcn-e', {
        'gcn_v': SMALL, 'gcn_v_checkpoint': str(tmp_path / 'v.pt'),
        'hidden_channels': 8, 'ignore_ratio': 0.5, 'train_ignore_ratio': 0.5,
        'train': {'steps': 3, 'optimizer': 'adam', 'lr': 1e-3,
                  'batch_size': 4}})
    values = np.array([0.2, 0.6, 0.9])
    for method in (gcn_v, gcn_e):
        sweep = threshold_sweep(graph, method, values=values)
        expected = [cluster(graph, _at(method, value)).report['metrics']
                    for value in values]
        assert sweep['metrics'] == expected
        assert len({m['pairwise_fscore'] for m in expected}) > 1


def test_threshold_left_none_is_chosen_on_the_training_split(graph,
                                                              tmp_path):
    method = train(graph, 'gcn-v', {**SMALL, 'tau': None},
                   out=tmp_path / 'v.pt')
    # The sweep covers the similarities tau cuts: GCN-feature ones.
    peaks = method.predict_peaks(graph)
    sweep = threshold_sweep(graph, method)
    assert sweep['values'] == sweep_values(peaks.similarity).tolist()
    assert method.trained_threshold == best_threshold(sweep)
    best = max(m['pairwise_fscore'] for m in sweep['metrics'])
    report = cluster(graph, method).report
    assert report['metrics']['pairwise_fscore'] == best
    assert report['params']['tau_used'] == method.trained_threshold
    assert best > sweep['metrics'][0]['pairwise_fscore']
    reloaded = make_method('gcn-v', checkpoint=tmp_path / 'v.pt')
    assert reloaded.trained_threshold == method.trained_threshold
    np.testing.assert_array_equal(
        reloaded.predict(graph),
        _at(method, method.trained_threshold).predict(graph))
    # Given, the parameter is used and training chooses nothing.
    given = train(graph, 'gcn-v', SMALL)
    assert given.trained_threshold is None and given.threshold == 0.5
    with pytest.raises(ValueError, match="'gcn-v' has no tau: give one"):
        _ = build_method('gcn-v').threshold


def _at(method, value):
    variant = copy.copy(method)
    variant.params = dataclasses.replace(
        method.params, **{method.threshold_name: float(value)})
    return variant


@withPackage('torch_sparse')
def test_sparse_tensor_layout_gives_the_same_clusters(graph, tmp_path):
    params = {'gcn_v': SMALL, 'hidden_channels': 8, 'tau': 0.5,
              'ignore_ratio': 0.5, 'train': {'steps': 2, 'batch_size': 4}}
    train(graph, 'gcn-v+e', params, out=tmp_path / 've.pt')
    labels = {layout: make_method('gcn-v+e', {**params, 'gcn_v': {
        **SMALL, 'sparse_layout': layout}}, checkpoint=tmp_path / 've.pt'
    ).predict(graph) for layout in ('csr', 'sparse_tensor')}
    np.testing.assert_array_equal(labels['csr'], labels['sparse_tensor'])


def test_original_checkpoints(reference_fixtures):
    root = reference_fixtures
    features = read_features(root / 'graph' / 'features.bin', 256)
    graph = build_graph(features, labels=read_labels(
        root / 'graph' / 'labels.meta'),
        knn_path=root / 'graph' / 'knns' / 'faiss_k_80.npz')
    io = np.load(root / 'models' / 'gcn_v_io.npz')
    gcn_v = make_method('gcn-v', {'use_gcn_feat': False},
                        checkpoint=root / 'models' / 'gcn_v.pth')
    confidence, hidden = gcn_v.infer(graph)
    np.testing.assert_allclose(confidence.numpy(), io['pred'], atol=1e-5)
    np.testing.assert_allclose(hidden.numpy(), io['gcn_feat'], atol=1e-5)
    expected = peaks_to_labels(confidence_to_peaks(
        graph.knn_neighbor, graph.knn_similarity, confidence), 0.65)
    np.testing.assert_array_equal(cluster(graph, gcn_v).labels, expected)

    with pytest.raises(ValueError, match='gcn_v_checkpoint=gcn_v.pth'):
        make_method('gcn-v+e', checkpoint=root / 'models' / 'gcn_e.pth')
    both = make_method('gcn-v+e', {'gcn_v_checkpoint': str(
        root / 'models' / 'gcn_v.pth')},
        checkpoint=root / 'models' / 'gcn_e.pth')
    result = cluster(graph, both)
    assert result.report['metrics']['pairwise_fscore'] > 0.3
    stages = [stage['name'] for stage in result.report['stages']]
    assert {'GCN-V inference', 'GCN-E inference', 'merge'} <= set(stages)


def test_cli_clusters_with_the_original_pair(reference_fixtures, tmp_path):
    root = reference_fixtures
    out, report = tmp_path / 'pred.meta', tmp_path / 'report.json'
    assert main(['-q', 'cluster', '--method', 'gcn-v+e', '--features',
                 str(root / 'graph' / 'features.bin'), '--dim', '256',
                 '--knn', str(root / 'graph' / 'knns' / 'faiss_k_80.npz'),
                 '--labels', str(root / 'graph' / 'labels.meta'),
                 '--checkpoint', str(root / 'models' / 'gcn_e.pth'),
                 '--param', f"gcn_v_checkpoint={root / 'models' / 'gcn_v.pth'}",
                 '--no-progress', '--out', str(out), '--report',
                 str(report)]) == 0
    assert read_labels(out, num_nodes=2000).shape == (2000,)


@pytest.mark.parametrize('name', ['gcn_v_ms1m', 'gcn_e_ms1m',
                                  'gcn_v_deepfashion', 'gcn_e_deepfashion'])
def test_configs_build_their_method(name):
    config = load_config(CONFIGS / f'{name}.yaml')
    method = build_method(config.method, config.params)
    assert method.name == config.method
    assert method.params.train.steps > 0
