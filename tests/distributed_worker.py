r"""The work that ``tests/test_distributed.py`` runs once in one process
(imported) and once under ``torchrun --nproc-per-node 2`` (gloo on CPU):
a sharded kNN search, data-parallel GCN-V training, sharded inference of
``gcn-v``, ``gcn-v+e`` and ``learned-edges``, ``knn-threshold`` on rank 0,
and the same through the CLI.

Usage: ``distributed_worker.py OUT FEATURES EDGES_CHECKPOINT``; rank 0 writes
``OUT/results.npz`` and ``OUT/gcn_v.meta``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from ltc_pyg import distributed
from ltc_pyg.config import KNNConfig
from ltc_pyg.data.synthetic import make_splits
from ltc_pyg.graph.sharded_knn import sharded_knn_search
from ltc_pyg.pipelines.cli import main
from ltc_pyg.pipelines.run import build_graph, cluster, make_method, train

K = 10
# 64 training nodes per epoch in batches of 32: each of two ranks takes 16,
# so the mean of the ranks' mean losses is the mean over the batch.
GCN_V = {'hidden_channels': 16, 'use_gcn_feat': True,
         'train': {'steps': 12, 'lr': 0.05, 'milestones': [],
                   'batch_size': 32, 'samples_per_epoch': 64}}
GCN_E = {'gcn_v': GCN_V, 'hidden_channels': 16, 'ignore_ratio': 0.5,
         'inference_batch_size': 8,
         'train': {'steps': 4, 'lr': 0.05, 'milestones': [],
                   'batch_size': 8, 'samples_per_epoch': 16}}


def splits() -> dict:
    return make_splits(num_train_identities=10, num_test_identities=10,
                       dim=16, mean_size=12, spread=0.6,
                       low_quality_fraction=0.0, seed=0)


def run(out: Path, features: Path, edges_checkpoint: Path
        ) -> dict[str, np.ndarray]:
    data = splits()
    knn = sharded_knn_search(data['test'].x, K, chunk_size=50)
    train_graph = build_graph(data['train'].x, KNNConfig(k=K),
                              data['train'].labels)
    test_graph = build_graph(data['test'].x, KNNConfig(k=K),
                             data['test'].labels)
    gcn_v = train(train_graph, 'gcn-v', GCN_V, out=out / 'gcn_v.pt')
    gcn_e = train(train_graph, 'gcn-e', GCN_E)
    edges = make_method('learned-edges', checkpoint=edges_checkpoint)
    results = {
        'knn_neighbor': knn.neighbor, 'knn_similarity': knn.similarity,
        'gcn_v_weights': torch.cat([parameter.detach().view(-1) for parameter
                                    in gcn_v.model.parameters()]).numpy(),
        'gcn-v': cluster(test_graph, gcn_v).labels,
        'gcn-v+e': cluster(test_graph, gcn_e).labels,
        'learned-edges': cluster(test_graph, edges).labels,
        'knn-threshold': cluster(test_graph,
                                 make_method('knn-threshold')).labels}
    if torch.distributed.is_initialized():
        torch.distributed.barrier()  # rank 0 has written gcn_v.pt
    # Last: the CLI leaves the process group when it ends.
    code = main(['-q', 'cluster', '--method', 'gcn-v', '--features',
                 str(features), '--dim', '16', '--k', str(K), '--checkpoint',
                 str(out / 'gcn_v.pt'), '--out', str(out / 'gcn_v.meta')])
    assert code == 0, code
    return results


if __name__ == '__main__':
    distributed.init_from_env('cpu')
    writes = distributed.is_main_process()
    directory = Path(sys.argv[1])
    found = run(directory, Path(sys.argv[2]), Path(sys.argv[3]))
    if writes:
        np.savez(directory / 'results.npz', **found)
    distributed.close_process_group()
