import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from ltc_pyg.config import KNNConfig, from_dict
from ltc_pyg.data.synthetic import make_splits
from ltc_pyg.pipelines.checkpoint import load_method, read_checkpoint
from ltc_pyg.pipelines.gcn_v import GCNVEParams, GCNVParams
from ltc_pyg.pipelines.methods import build_method
from ltc_pyg.pipelines.run import build_graph, train
from ltc_pyg.pipelines.training import (
    EpochSampler,
    LearnedMethod,
    TrainingPlan,
    TrainParams,
    show_progress,
)

V1 = Path(__file__).parent / 'data'  # written by data/make_v1.py


@pytest.fixture(scope='module')
def graph():
    split = make_splits(num_train_identities=1, num_test_identities=4, dim=8,
                        mean_size=8, spread=0.5, low_quality_fraction=0.0,
                        seed=0)['test']
    return build_graph(split.x, KNNConfig(k=6), split.labels)


def test_schedule_in_steps_or_epochs():
    steps = TrainParams(steps=10, epochs=None, lr=1.0,
                        milestones=(0.5, 0.8))
    assert steps.unit == 'step' and steps.total_steps(7) == 10
    assert [steps.lr_at(s) for s in (0, 4, 5, 7, 8, 9)] == pytest.approx(
        [1, 1, .1, .1, .01, .01])
    # Epoch milestones move the rate between epochs: 3 epochs of 4 steps,
    # 0.5 * 3 = epoch 1.5, so epoch 2 (step 8) is the first at 0.1.
    epochs = TrainParams(epochs=3, lr=1.0, milestones=(0.5,), save_every=1)
    assert epochs.total_steps(4) == 12
    assert [epochs.lr_at(s, 4) for s in (0, 7, 8)] == pytest.approx(
        [1, 1, .1])
    assert [done for done in range(13) if epochs.saves_after(done, 4)] == [
        4, 8]  # the last checkpoint is the caller's
    with pytest.raises(ValueError, match='exactly one of steps and epochs'):
        TrainParams(steps=10)
    with pytest.raises(ValueError, match='batch_size must be positive'):
        TrainParams(batch_size=0)


def test_partial_train_blocks_keep_the_methods_defaults():
    params = from_dict(GCNVEParams, {'train': {'steps': 3},
                                     'gcn_v': {'train': {'lr': 0.5}}})
    assert params.train == TrainParams(steps=3, epochs=None, batch_size=32,
                                       milestones=(0.5, 0.8, 0.9))
    assert params.gcn_v.train == TrainParams(
        steps=200, epochs=None, lr=0.5, milestones=(0.5, 0.8, 0.9))
    with pytest.raises(ValueError, match='set the other to null'):
        from_dict(GCNVParams, {'train': {'epochs': 2}})


def test_epoch_sampler_is_a_permutation_per_epoch_addressed_by_step():
    sampler = EpochSampler(10, 4, seed=1, limit=9)
    assert sampler.steps_per_epoch == 3
    epoch = torch.cat([sampler(step) for step in range(3)])
    assert [len(sampler(step)) for step in range(3)] == [4, 4, 1]
    assert epoch.unique().numel() == 9
    again = EpochSampler(10, 4, seed=1, limit=9)
    assert torch.equal(again(4), sampler(4)) and torch.equal(again(1),
                                                             sampler(1))
    assert not torch.equal(sampler(3), sampler(0))  # another epoch
    assert torch.equal(EpochSampler(5, None, seed=0)(0).sort().values,
                       torch.arange(5))


def test_building_a_model_leaves_the_callers_rng_alone(graph):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    method = build_method('gcn-v', {'hidden_channels': 4})
    method.build(8)
    assert torch.equal(torch.rand(3), expected)
    other = build_method('gcn-v', {'hidden_channels': 4})
    other.build(8)  # the same seed gives the same initial weights
    for key, value in method.model.state_dict().items():
        assert torch.equal(other.model.state_dict()[key], value)


@pytest.mark.parametrize('name', ['gcn-v+e', 'gcn-d+s', 'lgcn'])
def test_version_1_checkpoints_load(name, graph):
    method = load_method(V1 / f'{name}.pt', name)[0]
    assert method.trained and method.model is not None
    np.testing.assert_array_equal(method.predict(graph),
                                  np.load(V1 / 'labels.npz')[name])
    if name == 'lgcn':  # train.max_pivots is now train.samples_per_epoch
        assert method.params.train.samples_per_epoch == 16


def test_version_1_learned_edges_load_with_their_temperature(graph):
    method = load_method(V1 / 'learned-edges.pt', 'learned-edges')[0]
    assert method.trained and method.temperature > 0
    np.testing.assert_array_equal(
        method.predict(graph), np.load(V1 / 'learned-edges-labels.npy'))


def test_version_1_gcn_s_without_compare_to_seed_uses_raw_features():
    state = read_checkpoint(V1 / 'gcn-d+s.pt')['state']
    del state['compare_to_seed']
    method = build_method('gcn-d+s', {'gcn_d': {'hidden_channels': [4]},
                                      'hidden_channels': [4]})
    method.load_state_dict(state)
    assert method.model_kwargs['compare_to_seed'] is False
    assert not method.model.compare_to_seed


def test_version_1_epoch_counter_resumes(graph):
    # Saved after GCN-D's first of two epochs: GCN-D resumes at epoch 1.
    method = train(graph, 'gcn-d+s', resume=V1 / 'gcn-d+s-epoch1.pt')
    partial = load_method(V1 / 'gcn-d+s-epoch1.pt', 'gcn-d+s')[0]
    assert not partial.base.trained and partial.model is None
    fresh = train(graph, 'gcn-d+s', partial.params)
    assert method.base.trained and method.trained
    assert method.base.step == fresh.base.step and method.step == fresh.step


class Diverging(LearnedMethod):
    r"""One weight; the loss of step 2 is not finite."""
    name = 'diverging'
    label = 'toy'
    Params = dataclasses.make_dataclass(
        'DivergingParams', [('train', TrainParams, dataclasses.field(
            default_factory=lambda: TrainParams(steps=5, epochs=None)))],
        frozen=True)

    def build_model(self, in_channels):
        return torch.nn.Linear(in_channels, 1)

    def prepare_training(self, graph, timer):
        model = self.build(graph.x.size(1))

        def loss_at(step):
            loss = model(graph.x).square().mean()
            return loss * float('nan') if step == 2 else loss
        return TrainingPlan(1, loss_at)

    def predict(self, graph, timer=None):
        raise NotImplementedError


def test_divergence_stops_before_the_update(graph):
    method = Diverging()
    with pytest.raises(RuntimeError, match='toy training diverged at step 2 '
                       r'\(loss nan\); lower train.lr'):
        method.fit(graph)
    assert method.step == 2
    assert all(torch.isfinite(p).all() for p in method.model.parameters())


def test_one_progress_bar_rule():
    assert show_progress(None, 21) and not show_progress(None, 20)
    assert not show_progress(False, 10**6) and show_progress(True, 1)
