"""Writes version-1 checkpoints (written by the code before the training
framework, commit 575ce1c) and the labels they give, for
tests/pipelines/test_training.py. Run with that commit on PYTHONPATH:
``python make_v1.py tests/pipelines/data``."""
import sys
from pathlib import Path

import numpy as np

from ltc_pyg.config import KNNConfig
from ltc_pyg.data.synthetic import make_splits
from ltc_pyg.pipelines.checkpoint import save_checkpoint
from ltc_pyg.pipelines.methods import build_method
from ltc_pyg.pipelines.run import build_graph, train

out = Path(sys.argv[1])
split = make_splits(num_train_identities=1, num_test_identities=4, dim=8,
                    mean_size=8, spread=0.5, low_quality_fraction=0.0,
                    seed=0)['test']
graph = build_graph(split.x, KNNConfig(k=6), split.labels)
gcn_v = {'hidden_channels': 4, 'tau': 0.5, 'train': {'steps': 2}}
gcn_d = {'proposals': [{'k': 6, 'th': 0.5, 'max_size': 20, 'min_size': 3}],
         'hidden_channels': [4], 'train': {'epochs': 2, 'batch_size': 4}}
params = {
    'gcn-v+e': {'gcn_v': gcn_v, 'hidden_channels': 4, 'tau': 0.5,
                'ignore_ratio': 0.5, 'train_ignore_ratio': 0.5,
                'train': {'steps': 2, 'batch_size': 4}},
    'gcn-d+s': {'gcn_d': gcn_d, 'hidden_channels': [4],
                'compare_to_seed': False,
                'train': {'epochs': 1, 'batch_size': 4}},
    'lgcn': {'k_at_hop': [3, 2], 'active_connection': 2,
             'hidden_channels': [4],
             'train': {'epochs': 1, 'batch_size': 8, 'max_pivots': 16,
                       'save_every': 1}},
}
labels = {}
for name, p in params.items():
    method = train(graph, name, p, out=out / f'{name}.pt', knn=KNNConfig(k=6))
    labels[name] = method.predict(graph)
# GCN-D+S stopped after GCN-D's first of two epochs (an epoch counter).
method = build_method('gcn-d+s', params['gcn-d+s'])


def stop():
    save_checkpoint(out / 'gcn-d+s-epoch1.pt', method, KNNConfig(k=6))
    raise KeyboardInterrupt


try:
    method.fit(graph, save=stop)
except KeyboardInterrupt:
    pass
np.savez(out / 'labels.npz', **labels)
