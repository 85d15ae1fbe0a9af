import numpy as np
import pytest
import torch

from ltc_pyg.config import KNNConfig
from ltc_pyg.data.synthetic import make_splits
from ltc_pyg.pipelines.checkpoint import (
    read_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from ltc_pyg.pipelines.methods import build_method
from ltc_pyg.pipelines.run import build_graph, train

# Dropout draws from torch's global generator: resuming must restore it.
PARAMS = {'hidden_channels': 8, 'dropout': 0.5, 'tau': 0.5, 'tau_0': 0.5,
          'train': {'steps': 4, 'lr': 0.05, 'milestones': [],
                    'save_every': 2}}


@pytest.fixture(scope='module')
def graph():
    split = make_splits(num_train_identities=1, num_test_identities=5,
                        dim=8, mean_size=8, spread=0.5,
                        low_quality_fraction=0.0, seed=0)['test']
    return build_graph(split.x, KNNConfig(k=6), split.labels)


def test_rng_state_round_trips():
    state = rng_state()
    first = torch.rand(3), np.random.random_sample(3)
    set_rng_state(state)
    second = torch.rand(3), np.random.random_sample(3)
    assert torch.equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_resume_with_dropout_is_bit_identical(graph, tmp_path):
    full = train(graph, 'gcn-v', PARAMS, out=tmp_path / 'full.pt')
    interrupted = build_method('gcn-v', PARAMS)

    def save_and_stop():
        save_checkpoint(tmp_path / 'half.pt', interrupted, KNNConfig(k=6))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(graph, save=save_and_stop)
    assert 'rng' in read_checkpoint(tmp_path / 'half.pt')
    torch.manual_seed(12345)  # whatever ran in between must not matter
    resumed = train(graph, 'gcn-v', PARAMS, out=tmp_path / 'resumed.pt',
                    resume=tmp_path / 'half.pt')
    for key, value in full.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key


@pytest.mark.parametrize('labels, message', [
    (lambda n: np.zeros(n, dtype=np.int64), 'have one identity'),
    (lambda n: np.arange(n), 'are singletons'),
])
def test_training_on_degenerate_labels_warns(graph, labels, message):
    degenerate = graph.clone()
    degenerate.y = torch.from_numpy(labels(graph.num_nodes))
    params = {**PARAMS, 'train': {**PARAMS['train'], 'steps': 1}}
    with pytest.warns(UserWarning, match=message):
        train(degenerate, 'gcn-v', params)
