from pathlib import Path

import numpy as np
import pytest
import torch

from ltc_pyg.cluster.deoverlap import deoverlap
from ltc_pyg.config import KNNConfig, load_config
from ltc_pyg.data.io import (
    read_features,
    read_labels,
)
from ltc_pyg.data.synthetic import make_splits
from ltc_pyg.metrics import evaluate
from ltc_pyg.pipelines import gcn_d as gcn_d_module
from ltc_pyg.pipelines.cli import main
from ltc_pyg.pipelines.gcn_d import (
    DEFAULT_PROPOSALS,
    SEGMENTATION_PROPOSALS,
    GCNDParams,
    graph_proposals,
    proposal_scale,
    scaled_settings,
    upper_bound_labels,
)
from ltc_pyg.pipelines.knn_threshold import KNNThreshold
from ltc_pyg.pipelines.methods import build_method
from ltc_pyg.pipelines.run import (
    best_threshold,
    build_graph,
    cluster,
    make_method,
    threshold_sweep,
    train,
)
from ltc_pyg.proposals.super_vertex import (
    IterativeSetting,
    Proposals,
    ProposalSetting,
)
from ltc_pyg.proposals.targets import proposal_targets

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
PROPOSALS = [{'k': 8, 'th': 0.55, 'max_size': 40, 'min_size': 3},
             {'k': 8, 'th': 0.65, 'max_size': 40, 'min_size': 3,
              'iterations': [{'k': 2, 'th': 0.5, 'max_size': 80,
                              'sv_max_size': 4}]}]
SMALL = {'proposals': PROPOSALS, 'hidden_channels': [16, 8],
         'train': {'epochs': 2, 'batch_size': 8, 'lr': 0.01}}
SMALL_S = {'gcn_d': SMALL, 'hidden_channels': [8],
           'train': {'epochs': 2, 'batch_size': 4, 'lr': 0.01}}


@pytest.fixture(scope='module')
def split():
    return make_splits(num_train_identities=1, num_test_identities=8, dim=16,
                       mean_size=12, spread=0.5, low_quality_fraction=0.0,
                       seed=0)['test']


@pytest.fixture(scope='module')
def graph(split):
    return build_graph(split.x, KNNConfig(k=8), split.labels)


@pytest.fixture(scope='module')
def graph80(split):
    # MS1M's settings (k=80) need rows of 80: the same 96 nodes, k=80.
    return build_graph(split.x, KNNConfig(k=80), split.labels)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_params_need_proposals():
    with pytest.raises(ValueError, match='at least one proposal'):
        GCNDParams(proposals=())


def test_scaled_settings_map_thresholds_and_steps():
    setting = ProposalSetting(k=80, th=0.7, step=0.05, iterations=(
        IterativeSetting(k=2, th=0.4, step=0.1),))
    # s = 1.5 (a best linking threshold of 0.55 against MS1M's 0.7).
    (mapped,) = scaled_settings((setting,), 1.5)
    assert (mapped.th, mapped.step) == (0.55, 0.075)
    assert (mapped.iterations[0].th, mapped.iterations[0].step) == (0.1, 0.15)
    assert mapped.k == 80 and mapped.iterations[0].k == 2
    assert scaled_settings((setting,), 1.0) == (setting,)
    assert scaled_settings((setting,), 30.0)[0].step == 1.0  # a fraction


def test_default_proposals_follow_the_training_splits_scale(graph80,
                                                            tmp_path):
    params = {'hidden_channels': [16, 8],
              'train': {'epochs': 2, 'batch_size': 8, 'lr': 0.01}}
    method = train(graph80, 'gcn-d', params, out=tmp_path / 'd.pt')
    best = best_threshold(threshold_sweep(graph80, KNNThreshold()))
    assert method.proposal_scale == pytest.approx((1 - best) / 0.3)
    assert proposal_scale(graph80) == method.proposal_scale
    # The same as giving the mapped settings on the embedding's scale.
    given = train(graph80, 'gcn-d', {**params, 'proposals': scaled_settings(
        DEFAULT_PROPOSALS, method.proposal_scale)})
    assert given.proposal_scale is None
    result = cluster(graph80, method)
    np.testing.assert_array_equal(result.labels, cluster(graph80, given).labels)
    assert result.report['params']['proposal_scale_used'] == (
        method.proposal_scale)
    reloaded = make_method('gcn-d', checkpoint=tmp_path / 'd.pt')
    assert reloaded.proposal_scale == method.proposal_scale
    untrained = build_method('gcn-d')
    with pytest.raises(ValueError, match="in MS1M's similarity units"):
        graph_proposals(graph80, untrained.params)


def test_gcn_s_trains_on_lower_default_settings(graph80, monkeypatch):
    used = []
    generate = gcn_d_module.generate_proposals

    def recorded(features, neighbor, similarity, settings, *args):
        used.append(settings)
        return generate(features, neighbor, similarity, settings, *args)

    monkeypatch.setattr(gcn_d_module, 'generate_proposals', recorded)
    method = train(graph80, 'gcn-d+s', {
        'gcn_d': {'hidden_channels': [8], 'train': {'epochs': 1}},
        'hidden_channels': [8], 'train': {'epochs': 1}})
    scale = method.base.proposal_scale
    # GCN-D trains on the mapped defaults, GCN-S on the lower settings.
    assert used == [scaled_settings(DEFAULT_PROPOSALS, scale),
                    scaled_settings(SEGMENTATION_PROPOSALS, scale)]
    assert [s.th for s in SEGMENTATION_PROPOSALS] == [0.5, 0.6, 0.7, 0.75]


def test_upper_bound_is_true_iou_deoverlap(graph):
    params = build_method('gcn-d', SMALL).params
    proposals = graph_proposals(graph, params)
    assert len(proposals) > 0
    iou = proposal_targets(proposals, graph.y.numpy()).iou
    expected = deoverlap(iou, proposals, graph.num_nodes)
    np.testing.assert_array_equal(upper_bound_labels(graph, params),
                                  expected)
    assert evaluate(graph.y.numpy(), expected)['pairwise_fscore'] > 0.5
    unlabeled = graph.clone()
    del unlabeled.y
    with pytest.raises(ValueError, match='needs the true labels'):
        upper_bound_labels(unlabeled, params)


def test_gcn_d_reports_its_stages(graph):
    result = cluster(graph, train(graph, 'gcn-d', SMALL))
    assert result.report['params']['num_proposals'] > 0
    stages = {stage['name'] for stage in result.report['stages']}
    assert {'proposals', 'GCN-D inference', 'de-overlap'} <= stages


def test_gcn_d_plus_s_one_checkpoint(graph, tmp_path):
    train(graph, 'gcn-s', SMALL_S, out=tmp_path / 'ds.pt')
    reloaded = make_method('gcn-d+s', checkpoint=tmp_path / 'ds.pt')
    assert reloaded.model.compare_to_seed
    # Building GCN-S on a saved GCN-D leaves that GCN-D unchanged.
    train(graph, 'gcn-d', SMALL, out=tmp_path / 'd.pt')
    on_top = train(graph, 'gcn-s', {**SMALL_S, 'gcn_d_checkpoint': str(
        tmp_path / 'd.pt')})
    detector = make_method('gcn-d', checkpoint=tmp_path / 'd.pt')
    for key, value in _weights(detector.model).items():
        assert torch.equal(_weights(on_top.base.model)[key], value)


def test_original_checkpoints(reference_fixtures, tmp_path):
    root = reference_fixtures
    graph = build_graph(read_features(root / 'graph' / 'features.bin', 256),
                        labels=read_labels(root / 'graph' / 'labels.meta'),
                        knn_path=root / 'graph' / 'knns' / 'faiss_k_80.npz')
    models = root / 'models'
    detector = make_method('gcn-d', checkpoint=models / 'dsgcn_det.pth')
    assert detector.model.hidden_channels == (512, 64)
    io = np.load(models / 'dsgcn_det_io.npz')
    basic0 = np.load(root / 'algorithms' / 'proposals_basic0.npz')
    offsets = basic0['node_offsets']
    parts = [basic0['nodes'][offsets[i]:offsets[i + 1]]
             for i in io['proposal_index']]
    proposals = Proposals(np.concatenate(parts),
                          np.r_[0, np.cumsum([len(p) for p in parts])])
    np.testing.assert_allclose(detector.score(graph, proposals),
                               io['pred'][:, 0], atol=1e-5)

    with pytest.raises(ValueError, match='gcn_d_checkpoint=dsgcn_det.pth'):
        make_method('gcn-d+s', checkpoint=models / 'dsgcn_seg.pth')
    segmenter = make_method('gcn-d+s', {'gcn_d_checkpoint': str(
        models / 'dsgcn_det.pth')}, checkpoint=models / 'dsgcn_seg.pth')
    assert not segmenter.model.compare_to_seed  # the original's raw inputs
    out, report = tmp_path / 'pred.meta', tmp_path / 'report.json'
    assert main(['-q', 'cluster', '--method', 'gcn-d+s', '--features',
                 str(root / 'graph' / 'features.bin'), '--dim', '256',
                 '--knn', str(root / 'graph' / 'knns' / 'faiss_k_80.npz'),
                 '--labels', str(root / 'graph' / 'labels.meta'),
                 '--checkpoint', str(models / 'dsgcn_seg.pth'),
                 '--param', f"gcn_d_checkpoint={models / 'dsgcn_det.pth'}",
                 '--no-progress', '--out', str(out), '--report',
                 str(report)]) == 0
    assert read_labels(out, num_nodes=2000).shape == (2000, )


@pytest.mark.parametrize('name', ['gcn_d_2_prpsls', 'gcn_d_5_prpsls',
                                  'gcn_d_8_prpsls', 'gcn_d_20_prpsls'])
def test_configs_build_their_method(name):
    config = load_config(CONFIGS / f'{name}.yaml')
    method = build_method(config.method, config.params)
    proposals = (method.params.proposals if config.method == 'gcn-d'
                 else method.params.gcn_d.proposals)
    count = sum(setting.keep + len(setting.iterations)
                for setting in proposals)
    assert count == int(name.split('_')[2])
