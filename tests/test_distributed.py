import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ltc_pyg import distributed
from ltc_pyg.config import KNNConfig
from ltc_pyg.data.io import read_labels
from ltc_pyg.data.synthetic import write_split
from ltc_pyg.graph.knn import knn_search
from ltc_pyg.graph.sharded_knn import merge_candidates, sharded_knn_search
from ltc_pyg.pipelines.run import build_graph, train

WORKER = Path(__file__).with_name('distributed_worker.py')


def test_node_range_splits_contiguously():
    parts = [distributed.node_range(10, rank, 3) for rank in range(3)]
    assert [(part.start, part.stop) for part in parts] == [(0, 3), (3, 6),
                                                            (6, 10)]
    assert distributed.node_range(10) == range(10)  # no process group


def test_merge_candidates_keeps_the_best_of_all_shards():
    neighbor = np.array([[[0, 1, -1]], [[3, 4, 2]]])
    similarity = np.array([[[1.0, 0.5, 0.0]], [[0.7, 0.6, 0.5]]],
                          dtype=np.float32)
    ids, values = merge_candidates(neighbor, similarity, 4)
    # The tie at 0.5 keeps shard order (id 1 before id 2); -1 never wins.
    assert ids.tolist() == [[0, 3, 4, 1]]
    assert values[0].tolist() == pytest.approx([1.0, 0.7, 0.6, 0.5])


def test_helpers_are_the_identity_without_a_group():
    value = torch.arange(6.0).view(3, 2)
    assert torch.equal(distributed.all_gather_rows(value), value)
    assert distributed.all_gather_stacked(value).shape == (1, 3, 2)
    assert distributed.run_on_main(lambda: 7) == 7
    assert distributed.get_world_size() == 1 and distributed.get_rank() == 0


def test_two_gloo_ranks_equal_one_process(tmp_path):
    module = runpy.run_path(str(WORKER))
    data = module['splits']()
    write_split(tmp_path, 'test', data['test'])
    features = tmp_path / 'features' / 'test.bin'
    edges = tmp_path / 'edges.pt'
    train(build_graph(data['train'].x, KNNConfig(k=module['K']),
                      data['train'].labels), 'learned-edges',
          {'hidden_channels': 8, 'train': {'steps': 20, 'batch_size': 16}},
          out=edges)
    one, two = tmp_path / 'one', tmp_path / 'two'
    one.mkdir()
    two.mkdir()
    single = module['run'](one, features, edges)
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    subprocess.run([sys.executable, '-m', 'torch.distributed.run',
                    '--standalone', '--nproc-per-node', '2', str(WORKER),
                    str(two), str(features), str(edges)],
                   check=True, env=env, timeout=600)
    double = dict(np.load(two / 'results.npz'))

    exact = knn_search(data['test'].x, module['K'])
    assert np.array_equal(double['knn_neighbor'], exact.neighbor)
    assert np.array_equal(double['knn_neighbor'], single['knn_neighbor'])
    np.testing.assert_allclose(double['knn_similarity'],
                               single['knn_similarity'], atol=1e-6)
    # Averaging two half-batch gradients equals the whole batch's gradient
    # up to float rounding, so the weights agree to a tolerance.
    np.testing.assert_allclose(double['gcn_v_weights'],
                               single['gcn_v_weights'], atol=1e-5)
    for name in ('gcn-v', 'gcn-v+e', 'learned-edges', 'knn-threshold'):
        assert np.array_equal(double[name], single[name]), name
        assert np.unique(single[name]).size > 5, name
    assert np.array_equal(read_labels(two / 'gcn_v.meta'),
                          read_labels(one / 'gcn_v.meta'))
    assert np.array_equal(read_labels(one / 'gcn_v.meta'), single['gcn-v'])


def test_sharded_search_without_a_group_is_knn_search():
    x = np.random.default_rng(1).standard_normal((50, 4)).astype(np.float32)
    for method in ('flat', 'blocked'):
        ours = sharded_knn_search(x, 5, method, num_lists=4, num_probes=4)
        theirs = knn_search(x, 5, method, num_lists=4, num_probes=4)
        assert np.array_equal(ours.neighbor, theirs.neighbor), method
