r"""Extending ltc_pyg, as shown in the README: GCN-V with a user-written
message-passing layer, and a new learned method in one subclass.

    python examples/extend.py [--identities 40] [--steps 60]

Trains both on synthetic identities and prints their pairwise F-score on
held-out identities.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Linear
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import spmm

from ltc_pyg.cluster.merge import threshold_links
from ltc_pyg.config import KNNConfig
from ltc_pyg.data.synthetic import make_splits
from ltc_pyg.graph.transforms import knn_to_edges
from ltc_pyg.nn.models import GCNV
from ltc_pyg.pipelines.gcn_v import GCNVMethod
from ltc_pyg.pipelines.run import build_graph, cluster
from ltc_pyg.pipelines.training import (
    EpochSampler,
    LearnedMethod,
    TrainingPlan,
    TrainParams,
)


# A layer: x_i' = W_1 x_i + W_2 sum_j a_ij x_j, bipartite-ready.
class WeightedSumConv(MessagePassing):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(aggr='add')
        self.lin_self = Linear(in_channels, out_channels)
        self.lin_neighbors = Linear(in_channels, out_channels, bias=False)

    def forward(self, x, edge_index, edge_weight=None):
        x = (x, x) if isinstance(x, Tensor) else x
        out = self.propagate(edge_index, x=x, edge_weight=edge_weight)
        return self.lin_self(x[1]) + self.lin_neighbors(out)

    def message(self, x_j, edge_weight):
        return x_j if edge_weight is None else x_j * edge_weight.view(-1, 1)

    def message_and_aggregate(self, adj_t, x):
        return spmm(adj_t, x[0], reduce='sum')


class MyGCNV(GCNVMethod):
    name = 'my-gcn-v'

    def build_model(self, in_channels: int) -> GCNV:
        return GCNV(in_channels, self.params.hidden_channels,
                    self.params.dropout, conv=WeightedSumConv)


# A new learned method: an MLP scores each kNN pair; pairs above tau merge.
@dataclass(frozen=True)
class PairMLPParams:
    hidden_channels: int = 64
    tau: float = 0.9
    train: TrainParams = field(default_factory=lambda: TrainParams(
        epochs=10, batch_size=256, optimizer='adam', lr=1e-2))


class PairMLPMethod(LearnedMethod):
    name = 'pair-mlp'
    label = 'pair MLP'
    Params = PairMLPParams

    def build_model(self, in_channels: int) -> torch.nn.Module:
        hidden = self.params.hidden_channels
        return torch.nn.Sequential(Linear(2 * in_channels, hidden),
                                   torch.nn.ReLU(), Linear(hidden, 1))

    def _logits(self, x: Tensor, pairs: Tensor) -> Tensor:
        features = torch.cat([x[pairs[0]] * x[pairs[1]],
                              (x[pairs[0]] - x[pairs[1]]).abs()], dim=1)
        return self.model(features).view(-1)

    def prepare_training(self, graph, timer) -> TrainingPlan:
        self.build(graph.x.size(1))
        pairs, _ = knn_to_edges(graph.knn_neighbor, graph.knn_similarity)
        same = (graph.y[pairs[0]] == graph.y[pairs[1]]).float()
        sampler = EpochSampler(pairs.size(1), self.params.train.batch_size,
                               self.seed)

        def loss_at(step: int) -> Tensor:
            picked = sampler(step)
            return F.binary_cross_entropy_with_logits(
                self._logits(graph.x, pairs[:, picked]), same[picked])

        return TrainingPlan(sampler.steps_per_epoch, loss_at)

    @torch.no_grad()
    def predict(self, graph, timer=None) -> np.ndarray:
        self.trained_model(graph.x.size(1))
        pairs, _ = knn_to_edges(graph.knn_neighbor, graph.knn_similarity)
        score = self._logits(graph.x, pairs).sigmoid()
        return threshold_links(pairs, score, graph.num_nodes,
                               self.params.tau)
# (and one line in METHODS: 'pair-mlp': 'my_module:PairMLPMethod')


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--identities', type=int, default=40)
    parser.add_argument('--steps', type=int, default=60)
    args = parser.parse_args(argv)
    splits = make_splits(num_train_identities=args.identities,
                         num_test_identities=args.identities, dim=32,
                         mean_size=10, spread=0.5, seed=0)
    graphs = {name: build_graph(split.x, KNNConfig(k=10), split.labels)
              for name, split in splits.items()}
    methods = [
        MyGCNV({'hidden_channels': 32, 'tau': 0.6, 'train': {
            'steps': args.steps, 'lr': 0.05}}, progress_bar=False),
        PairMLPMethod(progress_bar=False)]
    scores = {}
    for method in methods:
        method.fit(graphs['train'])
        result = cluster(graphs['test'], method)
        scores[method.name] = result.report['metrics']['pairwise_fscore']
        print(f'{method.name}: pairwise F {scores[method.name]:.4f}')
    return scores


if __name__ == '__main__':
    main()
