import dataclasses
import json

import numpy as np
import pytest
import torch

from ltc_pyg.cluster import merge_linked_clusters
from ltc_pyg.cluster.map_equation import map_equation_clusters
from ltc_pyg.cluster.merge import threshold_links
from ltc_pyg.cluster.threshold import graph_threshold
from ltc_pyg.config import KNNConfig
from ltc_pyg.data.io import read_labels, write_features, write_labels
from ltc_pyg.data.synthetic import make_splits
from ltc_pyg.graph.edge_probability import (
    early_stop,
    kept_links,
    neighbor_edge_probability,
)
from ltc_pyg.metrics import evaluate
from ltc_pyg.pipelines.cli import main
from ltc_pyg.pipelines.edges import AGREEMENT_DROP, similarity_agreement
from ltc_pyg.pipelines.methods import build_method
from ltc_pyg.pipelines.run import (
    build_graph,
    cluster,
    make_method,
    sweep_values,
    threshold_sweep,
    train,
)

SMALL = {'hidden_channels': 8,
         'train': {'steps': 30, 'optimizer': 'adam', 'lr': 0.01,
                   'milestones': [], 'batch_size': 16}}


@pytest.fixture(scope='module')
def splits():
    return make_splits(num_train_identities=10, num_test_identities=10,
                       dim=16, mean_size=12, spread=0.6,
                       low_quality_fraction=0.0, seed=0)


@pytest.fixture(scope='module')
def graphs(splits):
    return {name: build_graph(split.x, KNNConfig(k=10), split.labels)
            for name, split in splits.items()}


def test_fc_es_keeps_the_nep_prefix_of_each_row(graphs):
    graph = graphs['test']
    method = make_method('fc-es', {'nep_threshold': 0.3,
                                   'temperature': 0.2})
    labels = cluster(graph, method).labels
    assert labels.shape == (graph.num_nodes,)
    # Every kept link joins its two ends (a module never splits a link
    # that the walk cannot leave): the early-stopped prefix of row 0.
    nep = neighbor_edge_probability(graph.knn_neighbor, graph.knn_similarity,
                                    0.2)
    first = graph.knn_neighbor[0, 1]
    if nep[0, 1] >= 0.3:
        assert labels[0] == labels[first]
    scores = evaluate(graph.y.numpy(), labels)
    assert scores['pairwise_fscore'] > 0.8


def test_fc_es_unlinked_nodes_can_be_forced_alone(graphs):
    graph = graphs['test']
    high = 0.99  # almost every row stops at its first neighbour
    kept = make_method('fc-es', {'nep_threshold': high})
    alone = make_method('fc-es', {'nep_threshold': high,
                                  'unlinked_singletons': True})
    nep = neighbor_edge_probability(graph.knn_neighbor, graph.knn_similarity)
    unlinked = (nep[:, 1] < high).numpy()
    labels = cluster(graph, alone).labels
    sizes = np.bincount(labels)
    assert unlinked.any() and (sizes[labels[unlinked]] == 1).all()
    assert cluster(graph, kept).labels.max() <= labels.max()


def test_fc_es_keeps_no_link_below_its_similarity_floor(graphs):
    graph = graphs['test']
    similarity = graph.knn_similarity
    floor = float(similarity[:, 1].median())  # half the rows start below
    method = make_method('fc-es', {'nep_threshold': 0.0, 'threshold': floor})
    labels = cluster(graph, method).labels
    # nep_threshold 0 keeps every slot down to the floor: the components of
    # the kept links are the similarity-thresholded graph's, and Infomap
    # only splits them further.
    kept = (similarity >= floor) & (torch.arange(similarity.size(1)) > 0)
    links = kept_links(graph.knn_neighbor, kept)
    components = threshold_links(links, torch.ones(links.size(1)),
                                 graph.num_nodes, 0.5)
    assert len(set(zip(labels, components, strict=True))) == labels.max() + 1
    alone = (similarity[:, 1] < floor).numpy()
    assert alone.any() and (np.bincount(labels)[labels[alone]] == 1).all()
    assert method.threshold_ == floor
    assert 'threshold_used' not in method.describe()  # it was given


def test_fc_es_reads_its_floor_from_the_graph_or_goes_without(graphs):
    graph = graphs['test']
    method = make_method('fc-es')
    cluster(graph, method)
    assert method.threshold_ == method.describe()['threshold_used'] \
        == graph_threshold(graph.knn_neighbor, graph.knn_similarity, 'flow')
    # -1 is the paper's fc-es: every row early-stopped on NEP alone.
    paper = make_method('fc-es', {'threshold': -1.0})
    nep = neighbor_edge_probability(graph.knn_neighbor, graph.knn_similarity)
    keep = early_stop(nep, 0.22)
    expected = map_equation_clusters(kept_links(graph.knn_neighbor, keep),
                                     nep[keep], graph.num_nodes, seed=0)
    labels = cluster(graph, paper).labels
    unlinked = ~keep.any(dim=1).numpy()
    assert (labels[~unlinked][:, None] == labels[~unlinked][None]).tolist() \
        == (expected[~unlinked][:, None] == expected[~unlinked][None]).tolist()
    with pytest.raises(ValueError, match=r'similarity floor .* \(got 1.5\)'):
        make_method('fc-es', {'threshold': 1.5})
    with pytest.raises(ValueError, match=r'nep_threshold is a NEP'):
        make_method('fc-es', {'nep_threshold': -0.1})


def test_fc_es_sweeps_similarity_floors_on_one_nep(graphs):
    graph = graphs['train']
    method = make_method('fc-es')
    sweep = threshold_sweep(graph, method)
    # The floor is a similarity, swept as Infomap's threshold is: over the
    # similarities of each node to its nearest other node.
    assert sweep['param'] == 'threshold'
    assert sweep['values'] == sweep_values(graph.knn_similarity[:, 1:2],
                                           15).tolist()
    assert len(method._nep_cache) == 1  # computed once, shared by copies
    recall = [m['pairwise_recall'] for m in sweep['metrics']]
    assert recall[-1] < recall[0]  # a higher floor keeps fewer links


def test_learned_edges_train_score_and_cluster(graphs, tmp_path):
    method = train(graphs['train'], 'learned-edges', SMALL,
                   out=tmp_path / 'edges.pt')
    assert method.step == 30
    train_temperature = method.temperature
    assert train_temperature == pytest.approx(
        0.75 * float((1 - graphs['train'].knn_similarity[:, 1:]).mean()),
        rel=1e-5)
    test = graphs['test']
    probability = method.edge_probability(test)
    assert probability.shape == test.knn_neighbor.shape
    assert bool((probability[:, 0] == 1).all())
    same = test.y[test.knn_neighbor[:, 1:]] == test.y.view(-1, 1)
    # The scorer separates same-identity edges on identities it never saw.
    assert probability[:, 1:][same].mean() > probability[:, 1:][~same].mean()
    result = cluster(test, method)
    assert result.report['metrics']['pairwise_fscore'] > 0.8
    # The checkpoint keeps the training temperature.
    loaded = make_method('learned-edges', SMALL, checkpoint=tmp_path /
                         'edges.pt')
    assert loaded.temperature == train_temperature
    assert np.array_equal(cluster(test, loaded).labels, result.labels)


def test_similarity_agreement_ranks_the_non_self_slots():
    similarity = torch.tensor([[1.0, 0.9, 0.5], [1.0, 0.8, 0.3],
                               [1.0, 0.7, 0.6]])
    # Column 0 (the node itself) is left out, whatever it holds.
    same_order = torch.tensor([[0.0, 0.8, 0.2], [0.3, 0.6, 0.1],
                               [0.9, 0.5, 0.4]])
    assert similarity_agreement(same_order, similarity) == pytest.approx(1.0)
    assert similarity_agreement(1 - same_order, similarity) == pytest.approx(
        -1.0)


def test_learned_edges_warns_when_it_reads_a_graph_unlike_its_training(
        graphs, monkeypatch, caplog, tmp_path):
    method = train(graphs['train'], 'learned-edges', SMALL,
                   out=tmp_path / 'edges.pt')
    expected = similarity_agreement(method.edge_probability(graphs['train']),
                                    graphs['train'].knn_similarity)
    assert method.similarity_agreement == expected > AGREEMENT_DROP
    loaded = make_method('learned-edges', SMALL,
                         checkpoint=tmp_path / 'edges.pt')
    assert loaded.similarity_agreement == expected
    test = graphs['test']
    with caplog.at_level('WARNING', logger='ltc_pyg.pipelines.edges'):
        report = cluster(test, loaded).report
    assert 'may not transfer' not in caplog.text
    assert report['params']['similarity_agreement_train'] == expected
    assert report['params']['similarity_agreement'] > (
        expected - AGREEMENT_DROP)
    assert report['params']['used_fallback'] is False
    # Probabilities unrelated to the similarity: the check fires, and the
    # similarity-only scorer trained beside it clusters instead.
    noise = torch.rand(test.knn_neighbor.shape,
                       generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(loaded, 'edge_probability', lambda graph, timer:
                        noise)
    with caplog.at_level('WARNING', logger='ltc_pyg.pipelines.edges'):
        result = cluster(test, loaded)
    assert 'may not transfer' in caplog.text
    assert 'similarity-only scorer instead' in caplog.text
    assert abs(loaded.similarity_agreement_) < 0.2
    assert result.report['params']['used_fallback'] is True
    fallback = loaded._fallback()
    assert fallback.params.features == ('similarity',)
    assert not fallback.params.context and fallback.fallback_state is None
    alone = build_method('learned-edges', dataclasses.replace(
        fallback.params, fallback=False))
    alone.load_state_dict(loaded.fallback_state)
    np.testing.assert_array_equal(result.labels, cluster(test, alone).labels)


def test_learned_edges_without_fallback_only_warns(graphs, monkeypatch,
                                                   caplog):
    method = train(graphs['train'], 'learned-edges',
                   {**SMALL, 'fallback': False})
    assert method.fallback_state is None
    test = graphs['test']
    noise = torch.rand(test.knn_neighbor.shape,
                       generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(method, 'edge_probability', lambda graph, timer:
                        noise)
    with caplog.at_level('WARNING', logger='ltc_pyg.pipelines.edges'):
        report = cluster(test, method).report
    assert 'train with features: [similarity]' in caplog.text
    assert report['params']['used_fallback'] is False


def test_learned_edges_threshold_is_a_probability():
    assert build_method('learned-edges').threshold_name is None
    with pytest.raises(ValueError, match=r'probability in \(0, 1\)'):
        build_method('learned-edges', {'threshold': 1.5})
    with pytest.raises(ValueError, match=r"one of \('log-odds'"):
        build_method('learned-edges', {'link_weight': 'cosine'})
    with pytest.raises(ValueError, match=r'merge_mass must be >= 0'):
        build_method('learned-edges', {'merge_mass': -1.0})


def test_learned_edges_merge_joins_what_the_walk_split(graphs):
    method = train(graphs['train'], 'learned-edges', SMALL)
    test = graphs['test']
    method.params = dataclasses.replace(method.params, merge_mass=0.5)
    merged = cluster(test, method).labels
    method.params = dataclasses.replace(method.params, merge_mass=0.0)
    walked = cluster(test, method).labels
    assert merged.max() < walked.max()  # some clusters were joined
    probability = method.edge_probability(test)
    keep = probability >= 0.5
    keep[:, 0] = False
    links = kept_links(test.knn_neighbor, keep)
    assert np.array_equal(merged, merge_linked_clusters(
        walked, links, probability[keep], 0.5))
    # A coarsening: every cluster of the walk lies inside one merged one.
    pairs = np.unique(np.stack([walked, merged]), axis=1)
    assert np.unique(pairs[0]).size == pairs.shape[1]


def test_cli_trains_and_clusters_learned_edges(splits, tmp_path):
    write_features(tmp_path / 'f.bin', splits['train'].x)
    write_labels(tmp_path / 'l.meta', splits['train'].labels)
    write_features(tmp_path / 't.bin', splits['test'].x)
    write_labels(tmp_path / 't.meta', splits['test'].labels)
    common = ['--dim', '16', '--k', '10', '--no-progress']
    assert main(['-q', 'train', '--method', 'learned-edges', '--features',
                 str(tmp_path / 'f.bin'), '--labels', str(tmp_path / 'l.meta'),
                 *common, '--param', 'hidden_channels=8', '--param',
                 'train.steps=20', '--out', str(tmp_path / 'e.pt')]) == 0
    report = tmp_path / 'report.json'
    assert main(['-q', 'cluster', '--method', 'learned-edges', '--features',
                 str(tmp_path / 't.bin'), '--labels', str(tmp_path / 't.meta'),
                 *common, '--checkpoint', str(tmp_path / 'e.pt'), '--out',
                 str(tmp_path / 'pred.meta'), '--report', str(report)]) == 0
    scores = json.loads(report.read_text())['metrics']
    assert scores['pairwise_fscore'] > 0.8
    assert read_labels(tmp_path / 'pred.meta').shape == (
        splits['test'].x.shape[0],)
    # --param overrides one stored parameter and keeps the others (the
    # model's own hidden_channels=8 among them): here the walk on groups.
    assert main(['-q', 'cluster', '--method', 'learned-edges', '--features',
                 str(tmp_path / 't.bin'), '--labels', str(tmp_path / 't.meta'),
                 *common, '--checkpoint', str(tmp_path / 'e.pt'), '--param',
                 'coarsen_above=0', '--out', str(tmp_path / 'pred.meta'),
                 '--report', str(report)]) == 0
    grouped = json.loads(report.read_text())
    assert grouped['params']['hidden_channels'] == 8
    assert grouped['params']['coarsen_above'] == 0
    assert grouped['metrics']['pairwise_fscore'] > 0.8
