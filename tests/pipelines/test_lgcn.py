import json

import numpy as np
import pytest
import torch
import yaml
from torch_geometric.data import Data

from ltc_pyg.config import load_config
from ltc_pyg.data.io import read_features, read_knn, read_labels
from ltc_pyg.graph.knn import l2_normalize
from ltc_pyg.pipelines.checkpoint import load_method
from ltc_pyg.pipelines.cli import main
from ltc_pyg.pipelines.lgcn import LGCNMethod, LGCNParams
from ltc_pyg.pipelines.methods import build_method
from ltc_pyg.proposals import nearest_others

SMALL = {'k_at_hop': [2, 1], 'active_connection': 1,
         'hidden_channels': [8, 4]}


def chain_graph() -> Data:
    r"""Groups 0-1-2 and 3-4-5 on a chain, kNN k = 3, 4-d features."""
    generator = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(6, 4, generator=generator))
    neighbor = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 1, 3], [3, 2, 4],
                             [4, 5, 3], [5, 4, 3]])
    return Data(x=x, knn_neighbor=neighbor,
                knn_similarity=torch.ones(6, 3), num_nodes=6,
                y=torch.tensor([0, 0, 0, 1, 1, 1]))


def trained(train_params: dict, **params) -> LGCNMethod:
    method = LGCNMethod({**SMALL, 'train': train_params, **params})
    method.fit(chain_graph())
    return method


def test_lgcn_pairs_are_pivot_then_knn_order():
    method = trained({'epochs': 0})
    pairs, scores = method.linkage(chain_graph())
    assert pairs.tolist() == [[0, 1], [0, 2], [1, 0], [1, 2], [2, 1],
                              [2, 3], [3, 2], [3, 4], [4, 5], [4, 3],
                              [5, 4], [5, 3]]
    assert scores.dtype == np.float32 and ((scores > 0) & (scores < 1)).all()
    some, _ = method.linkage(chain_graph(), pivots=torch.tensor([4]))
    assert some.tolist() == [[4, 5], [4, 3]]


@pytest.mark.parametrize('conv', ['GraphConv', 'LEConv'])
def test_lgcn_linkage_equals_the_model_on_the_subgraphs(conv):
    # GraphConv takes the projected shortcut, LEConv the subgraph features.
    method = trained({'epochs': 2, 'batch_size': 2}, conv=conv)
    assert method.model.projectable == (conv == 'GraphConv')
    graph = chain_graph()
    _, scores = method.linkage(graph)
    batch = method.transform.subgraphs(graph, torch.arange(6))
    with torch.no_grad():
        expected = method._logits(batch).softmax(dim=1)[:, 1]
    np.testing.assert_allclose(scores, expected.numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize('max_size,expected', [
    (6, [0, 0, 0, 0, 0, 0]),  # round 0 links everything, regardless of score
    (1, [0, 1, 2, 3, 4, 5]),
])
def test_lgcn_predict_propagates_under_max_size(max_size, expected):
    method = trained({'epochs': 0}, max_size=max_size)
    graph = chain_graph()
    del graph.y
    assert method.predict(graph).tolist() == expected


class CliqueScores(LGCNMethod):
    r"""Scores a link 0.9 when its pivot is in the first clique of
    :func:`two_cliques`, else 0.3 (no model)."""
    def linkage(self, graph, pivots=None):
        one_hop = nearest_others(graph.knn_neighbor, pivots, 3)
        pairs = torch.stack([pivots.repeat_interleave(3),
                             one_hop.reshape(-1)], dim=1).numpy()
        self.linkage_seconds_ = {'subgraphs': 1.0, 'model': 2.0}
        return pairs, np.where(pairs[:, 0] < 4, 0.9, 0.3).astype(np.float32)


def two_cliques() -> Data:
    r"""kNN rows (k = 4) of two 4-cliques, 0-3 and 4-7."""
    rows = [[node] + [other for other in range(node - node % 4,
                                               node - node % 4 + 4)
                      if other != node] for node in range(8)]
    return Data(knn_neighbor=torch.tensor(rows), num_nodes=8)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_lgcn_scores_covering_pivots_then_nodes_with_no_link(seed):
    # pivot_coverage=1 and 8 nodes visited one by one: the first visited
    # node of each clique is its one covering pivot. Clique 0's links score
    # 0.9; clique 1's score 0.3, so its other three nodes have no link of
    # probability >= 0.5 and become pivots in the second pass.
    method = CliqueScores({'k_at_hop': [3, 1], 'active_connection': 1,
                           'pivot_coverage': 1}, seed=seed)
    pairs, scores = method.scored_links(two_cliques())
    first = pairs[::3, 0]
    assert (first[0] < 4) and (first[1] >= 4) and method.num_pivots_ == 5
    assert sorted(first[2:]) == sorted(set(range(4, 8)) - {first[1]})
    assert method.linkage_seconds_ == {'subgraphs': 2.0, 'model': 4.0}
    assert method.predict(two_cliques()).tolist() == [0] * 4 + [1] * 4
    assert method.describe()['num_pivots'] == 5


def test_lgcn_pivot_coverage_none_or_unreachable_is_every_node():
    graph = chain_graph()
    del graph.y
    # No node is a one-hop node of 4 pivots (k_1 = 2, in-degree <= 3).
    method = trained({'epochs': 0}, max_size=2, pivot_coverage=4)
    pairs, scores = method.scored_links(graph)
    every_node = trained({'epochs': 0}, max_size=2, pivot_coverage=None)
    expected_pairs, expected_scores = every_node.linkage(graph)
    assert np.array_equal(pairs, expected_pairs)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-6)
    assert method.num_pivots_ == 6


def test_lgcn_params_and_errors():
    with pytest.raises(ValueError, match='step'):
        LGCNParams(step=0.0)
    with pytest.raises(ValueError, match='k_at_hop'):
        LGCNParams(k_at_hop=(0, 10))
    with pytest.raises(ValueError, match='pivot_coverage'):
        LGCNParams(pivot_coverage=0)
    with pytest.raises(ValueError, match='no trained L-GCN model'):
        LGCNMethod().linkage(chain_graph())
    method = trained({'epochs': 0})
    graph = chain_graph()
    graph.x = torch.ones(6, 5)
    with pytest.raises(ValueError, match='takes 4 features'):
        method.linkage(graph)
    with pytest.raises(ValueError, match='labelled'):
        LGCNMethod(SMALL).fit(Data(x=graph.x, knn_neighbor=graph.knn_neighbor,
                                   y=torch.full((6, ), -1)))


def test_lgcn_config_is_the_original_ms1m_row():
    config = load_config('configs/lgcn_ms1m.yaml')
    params = build_method(config.method, config.params).params
    assert config.method == 'lgcn' and config.knn.k == 80
    assert (params.k_at_hop, params.active_connection) == ((200, 10), 10)
    assert (params.step, params.max_size, params.pool) == (0.6, 300, 'avg')
    assert params.pivot_coverage is None  # every node a pivot


def fixture_graph(root) -> Data:
    x = l2_normalize(read_features(root / 'graph' / 'features.bin', 256))
    knn = read_knn(root / 'graph' / 'knns' / 'faiss_k_20.npz')
    return Data(x=torch.from_numpy(x),
                knn_neighbor=torch.from_numpy(knn.neighbor),
                knn_similarity=torch.from_numpy(knn.similarity),
                num_nodes=x.shape[0])


def test_lgcn_original_checkpoint_scores_match_reference(reference_fixtures):
    root = reference_fixtures
    io = np.load(root / 'models' / 'lgcn_io.npz')
    method, _ = load_method(root / 'models' / 'lgcn.pth', 'lgcn',
                            {'k_at_hop': [20, 5], 'active_connection': 5})
    pairs, scores = method.linkage(fixture_graph(root),
                                   torch.from_numpy(io['pivots']))
    ours = {tuple(pair): score for pair, score in zip(pairs.tolist(), scores,
                                                      strict=True)}
    reference = dict(zip(map(tuple, io['edges'].tolist()), io['edge_scores'],
                         strict=True))
    assert sorted(ours) == sorted(reference)
    np.testing.assert_allclose([ours[pair] for pair in reference],
                               list(reference.values()), atol=1e-5)


def test_lgcn_cli_train_and_cluster(tmp_path, reference_fixtures):
    root = reference_fixtures
    config = tmp_path / 'lgcn.yaml'
    config.write_text(yaml.safe_dump({
        'method': 'lgcn', 'seed': 1,
        'params': {'k_at_hop': [5, 2], 'active_connection': 2,
                   'hidden_channels': [16, 16],
                   'train': {'epochs': 1, 'batch_size': 8,
                             'samples_per_epoch': 16, 'optimizer': 'adam',
                             'lr': 0.001}}}))
    common = ['--features', str(root / 'graph' / 'features.bin'), '--dim',
              '256', '--knn', str(root / 'graph' / 'knns' / 'faiss_k_10.npz')]
    checkpoint = tmp_path / 'lgcn.pt'
    assert main(['train', 'lgcn', *common, '--labels',
                 str(root / 'graph' / 'labels.meta'), '--config', str(config),
                 '--out', str(checkpoint)]) == 0
    assert checkpoint.is_file()
    out, report = tmp_path / 'pred.meta', tmp_path / 'report.json'
    assert main(['cluster', '--method', 'lgcn', *common, '--checkpoint',
                 str(checkpoint), '--labels',
                 str(root / 'graph' / 'labels.meta'), '--out', str(out),
                 '--report', str(report)]) == 0
    assert read_labels(out, 2000).shape == (2000, )
    written = json.loads(report.read_text())
    assert written['method'] == 'lgcn' and written['params']['k_at_hop'] == [
        5, 2]
    assert [stage['name'] for stage in written['stages']][-4:] == [
        'L-GCN linkage', 'L-GCN propagation', 'evaluate', 'write']
