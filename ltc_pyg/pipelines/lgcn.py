r"""The ``lgcn`` method of "Linkage Based Face Clustering via Graph
Convolution Network" (`Wang et al., CVPR 2019
<https://arxiv.org/abs/1903.11306>`_).

Each pivot's instance pivot subgraph
(:class:`~ltc_pyg.proposals.PivotSubgraphs`) goes through
:class:`~ltc_pyg.nn.models.LGCN`, which scores the linkage between the pivot
and each of its one-hop nodes (the softmax probability of "linked"). The
original makes every node a pivot. By default here, the first pivots are
only as many as reach every node ``pivot_coverage`` times
(:func:`~ltc_pyg.proposals.covering_pivots`); then every other node none
of whose scored links is predicted linked becomes a pivot too, so the model
itself asks for subgraphs where it saw no link. On the synthetic benchmark
that is 15% of the nodes, on LFW (a third of it single-photo people) 66%,
at the quality of all pivots there; at 584K faces, 17% at the same
pairwise F and 0.8 points lower BCubed F (benchmarks/README.md, "L-GCN
with fewer pivots").
The scores of a pair seen from both ends are averaged, and the pseudo-label
propagation (:func:`~ltc_pyg.graph.components_components`) merges
linked nodes into clusters of at most ``max_size`` nodes, raising the score
threshold by ``step`` for larger ones.

Training and inference run over mini-batches of pivots, so memory is
bounded by ``train.batch_size`` / ``inference_batch_size`` subgraphs
whatever the graph size. ``--checkpoint`` also takes the original project's
released ``lgcn`` ``.pth``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Batch, Data
from tqdm.auto import tqdm

from ltc_pyg.config import check_ranges
from ltc_pyg.graph.components import (
    dynamic_threshold_components,
    relabel_by_first_appearance,
)
from ltc_pyg.graph.transforms import to_sparse_adjacency
from ltc_pyg.nn.conv import conv_by_name
from ltc_pyg.nn.models.lgcn import LGCN, convert_original_lgcn
from ltc_pyg.pipelines.report import StageTimer
from ltc_pyg.pipelines.training import (
    EpochSampler,
    LearnedMethod,
    TrainingPlan,
    TrainParams,
    show_progress,
)
from ltc_pyg.proposals.pivot import PivotSubgraphs, covering_pivots

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LGCNParams:
    r"""Parameters of ``lgcn`` (defaults: the original MS1M test setting).

    Args:
        k_at_hop (tuple of int): One-hop and two-hop neighbour counts of the
            pivot subgraphs, each capped at the kNN ``k - 1``.
        active_connection (int): Neighbours each subgraph node links to.
        pivot_coverage (int, optional): Inference first scores the
            subgraphs of pivots chosen so that every node is a pivot or a
            one-hop node of at least this many pivots
            (:func:`~ltc_pyg.proposals.covering_pivots`, seeded by the
            method's seed), then those of the other nodes with no scored
            link of probability :math:`\geq 0.5`; ``None`` makes every node a
            pivot, as the original.
        hidden_channels (tuple of int): Graph-convolution sizes of
            :class:`~ltc_pyg.nn.models.LGCN`.
        conv (str): The convolution by name, as for ``gcn-v``.
        max_size (int): Largest cluster of the propagation.
        step (float): Threshold step of the propagation.
        pool (str): How the two scores of a pair combine (``'avg'``,
            ``'max'``, ``'last'``).
        inference_batch_size (int): Pivot subgraphs per inference batch
            (16: a batch's temporaries stay below glibc's 32 MB ``mmap``
            threshold, so they are reused instead of mapped and faulted in
            again; 5% faster than 32 at 584K on 2 CPU cores).
        train (TrainParams): The schedule (``batch_size``: pivots;
            ``samples_per_epoch``: pivots drawn per epoch, all labelled
            nodes if ``None``).
    """
    k_at_hop: tuple[int, ...] = (200, 10)
    active_connection: int = 10
    pivot_coverage: int | None = 4
    hidden_channels: tuple[int, ...] = (512, 512, 256, 256)
    conv: str = 'GraphConv'
    max_size: int = 300
    step: float = 0.6
    pool: Literal['avg', 'max', 'last'] = 'avg'
    inference_batch_size: int = 16
    train: TrainParams = field(default_factory=lambda: TrainParams(
        epochs=4, batch_size=16, lr=0.01, weight_decay=1e-4))

    def __post_init__(self) -> None:
        PivotSubgraphs(self.k_at_hop, self.active_connection)  # checks them
        check_ranges(self, positive=('hidden_channels',))
        if self.max_size < 1 or not 0 < self.step <= 1:
            raise ValueError(f'lgcn needs max_size >= 1 and step in (0, 1] '
                             f'(got max_size={self.max_size}, step='
                             f'{self.step})')
        if self.pivot_coverage is not None and self.pivot_coverage < 1:
            raise ValueError(f'pivot_coverage must be positive or None '
                             f'(got {self.pivot_coverage})')
        if self.inference_batch_size < 1:
            raise ValueError(f'inference_batch_size must be positive (got '
                             f'{self.inference_batch_size})')


class LGCNMethod(LearnedMethod):
    r"""Pivot subgraphs, L-GCN linkage and pseudo-label propagation (see the
    module docstring)."""
    name = 'lgcn'
    label = 'L-GCN'
    Params = LGCNParams

    def __init__(self, params: Any = None, device: str = 'cpu', seed: int = 0,
                 progress_bar: bool | None = None) -> None:
        super().__init__(params, device, seed, progress_bar)
        self.transform = PivotSubgraphs(self.params.k_at_hop,
                                        self.params.active_connection)

    @classmethod
    def upgrade_params(cls, raw: dict[str, Any]) -> dict[str, Any]:
        r"""Version-1 checkpoints named ``train.samples_per_epoch``
        ``max_pivots``."""
        train = dict(raw.get('train', {}))
        if 'max_pivots' in train:
            train['samples_per_epoch'] = train.pop('max_pivots')
        return {**raw, 'train': train}

    def build_model(self, in_channels: int) -> LGCN:
        return LGCN(in_channels, self.params.hidden_channels,
                    conv_by_name(self.params.conv))

    def _logits(self, batch: Batch) -> Tensor:
        adj_t = to_sparse_adjacency(batch.edge_index, batch.edge_weight,
                                    batch.num_nodes)
        return self.model(batch.x.to(self.device), adj_t.to(self.device),
                          batch.one_hop_index.to(self.device))

    def _show(self, num_steps: int) -> bool:
        return show_progress(self.progress_bar, num_steps)

    def prepare_training(self, graph: Data, timer: StageTimer
                         ) -> TrainingPlan:
        train = self.params.train
        self.build(graph.x.size(1))
        pivots = (graph.y >= 0).nonzero().view(-1)
        if pivots.numel() == 0:
            raise ValueError('Training lgcn needs labelled nodes (all labels '
                             'are -1)')
        sampler = EpochSampler(pivots.numel(), train.batch_size, self.seed,
                               train.samples_per_epoch)
        logger.info('Training L-GCN on %d of %d labelled pivots per epoch, '
                    'batches of %d', sampler.per_epoch, pivots.numel(),
                    sampler.batch_size)

        def loss_at(step: int) -> Tensor:
            batch = self.transform.subgraphs(graph, pivots[sampler(step)])
            return F.cross_entropy(self._logits(batch),
                                   batch.y.to(self.device))

        return TrainingPlan(sampler.steps_per_epoch, loss_at)

    @torch.no_grad()
    def linkage(self, graph: Data, pivots: Tensor | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        r"""Scores every pivot -> one-hop pair with the model, mini-batched
        over pivots.

        With a :attr:`~ltc_pyg.nn.models.LGCN.projectable` model (the
        default ``GraphConv`` stack) the first layer's linear maps are
        applied once to the whole graph (:meth:`~ltc_pyg.nn.models.LGCN.
        project`) and each batch runs
        :meth:`~ltc_pyg.nn.models.LGCN.pivot_forward` on the subgraphs'
        structure; otherwise each batch runs the model on its subgraphs'
        features. Both give the same scores up to float rounding.

        Args:
            graph (Data): The affinity graph.
            pivots (Tensor, optional): ``[P]`` pivot ids (default: every
                node, ascending).

        Returns:
            (np.ndarray, np.ndarray): int64 pairs ``[P k_1, 2]`` (pivot,
            one-hop node; pivots in the given order, one-hop nodes in kNN
            order) and float32 linkage probabilities ``[P k_1]``.
        """
        model = self.trained_model(graph.x.size(1))
        if pivots is None:
            pivots = torch.arange(graph.num_nodes)
        num_pivots = pivots.numel()
        num_one_hop = self.transform.counts(graph.knn_neighbor.size(1))[0]
        if num_one_hop < self.params.k_at_hop[0]:
            logger.info('kNN rows of k=%d give %d one-hop nodes per pivot '
                        '(k_at_hop[0]=%d)', graph.knn_neighbor.size(1),
                        num_one_hop, self.params.k_at_hop[0])
        pairs = np.empty((num_pivots * num_one_hop, 2), dtype=np.int64)
        scores = np.empty(num_pivots * num_one_hop, dtype=np.float32)
        size = self.params.inference_batch_size
        seconds = {'subgraphs': 0.0, 'model': 0.0}
        projected = None
        if model.projectable:
            clock = time.perf_counter()
            projected = model.project(graph.x.to(self.device))
            seconds['model'] += time.perf_counter() - clock
        for start in tqdm(range(0, num_pivots, size), desc='L-GCN linkage',
                          disable=not self._show(num_pivots // size)):
            chunk = pivots[start:start + size]
            clock = time.perf_counter()
            if projected is None:
                batch = self.transform.subgraphs(graph, chunk)
            else:
                batch = self.transform.structure(graph.knn_neighbor, chunk)
            seconds['subgraphs'] += time.perf_counter() - clock
            clock = time.perf_counter()
            if projected is None:
                logits = self._logits(batch)
            else:
                logits = self._pivot_logits(projected, batch)
            probability = logits.softmax(dim=1)[:, 1]
            seconds['model'] += time.perf_counter() - clock
            rows = slice(start * num_one_hop,
                         (start + chunk.numel()) * num_one_hop)
            pairs[rows, 0] = chunk.repeat_interleave(num_one_hop).numpy()
            pairs[rows, 1] = batch.n_id[batch.one_hop_index].numpy()
            scores[rows] = probability.cpu().numpy()
        self.linkage_seconds_ = seconds
        logger.info('L-GCN linkage: %.1f s building subgraphs, %.1f s in the '
                    'model', seconds['subgraphs'], seconds['model'])
        return pairs, scores

    def _pivot_logits(self, projected: Tensor, batch: Batch) -> Tensor:
        r"""The logits of :meth:`_logits` from the projected graph features
        and the subgraphs' structure (:meth:`~ltc_pyg.proposals.
        PivotSubgraphs.structure`)."""
        adj_t = to_sparse_adjacency(batch.edge_index, batch.edge_weight,
                                    batch.num_nodes).to(self.device)
        n_id = batch.n_id.to(self.device)
        pivot = n_id[batch.pivot_index.to(self.device)][
            batch.batch.to(self.device)]
        return self.model.pivot_forward(projected, n_id, pivot, adj_t,
                                        batch.one_hop_index.to(self.device))

    def scored_links(self, graph: Data) -> tuple[np.ndarray, np.ndarray]:
        r""":meth:`linkage` of the pivots that ``pivot_coverage`` chooses
        (every node without it): those of
        :func:`~ltc_pyg.proposals.covering_pivots`, then the other nodes
        none of whose links scored so far reaches probability ``0.5``, the
        classifier's boundary between "linked" and "not linked".
        Sets ``num_pivots_`` and ``linkage_seconds_`` (both passes)."""
        coverage = self.params.pivot_coverage
        if coverage is None:
            self.num_pivots_ = graph.num_nodes
            return self.linkage(graph)
        num_nodes = graph.num_nodes
        num_one_hop = self.transform.counts(graph.knn_neighbor.size(1))[0]
        covering = covering_pivots(graph.knn_neighbor, num_one_hop, coverage,
                                   torch.Generator().manual_seed(self.seed))
        pairs, scores = self.linkage(graph, covering)
        seconds = self.linkage_seconds_
        best = torch.zeros(num_nodes).scatter_reduce_(
            0, torch.from_numpy(pairs.reshape(-1)),
            torch.from_numpy(scores).repeat_interleave(2), 'amax')
        best[covering] = 1.0
        unsure = (best < 0.5).nonzero().view(-1)
        logger.info('L-GCN: %d covering pivots (pivot_coverage=%d), then %d '
                    'nodes with no predicted link, of %d', covering.numel(),
                    coverage, unsure.numel(), num_nodes)
        self.num_pivots_ = covering.numel() + unsure.numel()
        if unsure.numel() == 0:
            return pairs, scores
        more_pairs, more_scores = self.linkage(graph, unsure)
        self.linkage_seconds_ = {stage: seconds[stage] + spent for stage, spent
                                 in self.linkage_seconds_.items()}
        return (np.concatenate([pairs, more_pairs]),
                np.concatenate([scores, more_scores]))

    def predict(self, graph: Data,
                timer: StageTimer | None = None) -> np.ndarray:
        timer = timer or StageTimer()
        with timer('L-GCN linkage'):
            pairs, scores = self.scored_links(graph)
        with timer('L-GCN propagation'):
            labels = dynamic_threshold_components(
                pairs, scores, graph.num_nodes, self.params.max_size,
                self.params.step, self.params.pool)
            return relabel_by_first_appearance(labels)

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        if getattr(self, 'linkage_seconds_', None) is not None:
            described['linkage_seconds'] = self.linkage_seconds_
        if getattr(self, 'num_pivots_', None) is not None:
            described['num_pivots'] = self.num_pivots_
        return described

    def load_original_state_dict(self, state_dict: dict[str, Any]) -> None:
        converted = convert_original_lgcn(state_dict)
        in_channels = state_dict['bn0.running_mean'].numel()
        hidden = tuple(converted[f'convs.{i}.lin_rel.weight'].size(0)
                       for i in range(sum(key.endswith('lin_rel.weight')
                                          for key in converted)))
        if hidden != tuple(self.params.hidden_channels):
            raise ValueError(f'The checkpoint has graph convolutions of sizes '
                             f'{hidden} but hidden_channels is '
                             f'{tuple(self.params.hidden_channels)}')
        self.load_model(converted, in_channels)
