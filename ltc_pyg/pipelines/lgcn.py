r"""The ``lgcn`` method of "Linkage Based Face Clustering via Graph
Convolution Network" (`Wang et al., CVPR 2019
<https://arxiv.org/abs/1903.11306>`_).

Every node is a pivot: its instance pivot subgraph
(:class:`~ltc_pyg.proposals.PivotSubgraphs`) goes through
:class:`~ltc_pyg.nn.models.LGCN`, which scores the linkage between the pivot
and each of its one-hop nodes (the softmax probability of "linked"). The
scores of a pair seen from both ends are averaged, and the pseudo-label
propagation (:func:`~ltc_pyg.cluster.dynamic_threshold_components`) merges
linked nodes into clusters of at most ``max_size`` nodes, raising the score
threshold by ``step`` for larger ones.

Training and inference run over mini-batches of pivots, so memory is
bounded by ``train.batch_size`` / ``inference_batch_size`` subgraphs
whatever the graph size. ``--checkpoint`` also takes the original project's
released ``lgcn`` ``.pth``.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader
from torch_geometric.data import Batch, Data
from tqdm.auto import tqdm

from ltc_pyg.cluster.dynamic_threshold import dynamic_threshold_components
from ltc_pyg.cluster.merge import relabel_by_first_appearance
from ltc_pyg.config import check_ranges
from ltc_pyg.graph.transforms import to_sparse_adjacency
from ltc_pyg.nn.models.lgcn import LGCN
from ltc_pyg.pipelines.methods import ClusteringMethod
from ltc_pyg.pipelines.report import StageTimer
from ltc_pyg.proposals.pivot import PivotSubgraphs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LGCNTrainParams:
    r"""The training schedule.

    Args:
        epochs (int): Passes over the pivots.
        batch_size (int): Pivot subgraphs per step.
        max_pivots (int, optional): Pivots drawn (without replacement) per
            epoch; ``None`` uses every labelled node.
        optimizer (str): ``'sgd'`` (with ``momentum``) or ``'adam'``.
        lr (float): Learning rate.
        momentum (float): SGD momentum.
        weight_decay (float): L2 penalty.
        save_every (int): Steps between checkpoints (``0``: at the end only).
    """
    epochs: int = 4
    batch_size: int = 16
    max_pivots: int | None = None
    optimizer: Literal['sgd', 'adam'] = 'sgd'
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    save_every: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(f'train needs epochs >= 0, batch_size >= 1 and '
                             f'lr > 0 (got epochs={self.epochs}, batch_size='
                             f'{self.batch_size}, lr={self.lr})')
        if self.max_pivots is not None and self.max_pivots < 1:
            raise ValueError(f'train.max_pivots must be positive (got '
                             f'{self.max_pivots})')


@dataclass(frozen=True)
class LGCNParams:
    r"""Parameters of ``lgcn`` (defaults: the original MS1M test setting).

    Args:
        k_at_hop (tuple of int): One-hop and two-hop neighbour counts of the
            pivot subgraphs, each capped at the kNN ``k - 1``.
        active_connection (int): Neighbours each subgraph node links to.
        hidden_channels (tuple of int): Graph-convolution sizes of
            :class:`~ltc_pyg.nn.models.LGCN`.
        max_size (int): Largest cluster of the propagation.
        step (float): Threshold step of the propagation.
        pool (str): How the two scores of a pair combine (``'avg'``,
            ``'max'``, ``'last'``).
        inference_batch_size (int): Pivot subgraphs per inference batch.
        train (LGCNTrainParams): The schedule.
    """
    k_at_hop: tuple[int, ...] = (200, 10)
    active_connection: int = 10
    hidden_channels: tuple[int, ...] = (512, 512, 256, 256)
    max_size: int = 300
    step: float = 0.6
    pool: Literal['avg', 'max', 'last'] = 'avg'
    inference_batch_size: int = 32
    train: LGCNTrainParams = field(default_factory=LGCNTrainParams)

    def __post_init__(self) -> None:
        PivotSubgraphs(self.k_at_hop, self.active_connection)  # checks them
        check_ranges(self, positive=('hidden_channels',))
        if self.max_size < 1 or not 0 < self.step <= 1:
            raise ValueError(f'lgcn needs max_size >= 1 and step in (0, 1] '
                             f'(got max_size={self.max_size}, step='
                             f'{self.step})')
        if self.inference_batch_size < 1:
            raise ValueError(f'inference_batch_size must be positive (got '
                             f'{self.inference_batch_size})')


def convert_original_lgcn(state_dict: dict[str, Tensor]
                          ) -> dict[str, Tensor]:
    r"""Maps the original ``lgcn`` state dict (``bn0``, ``conv1..4`` with
    ``(2 in, out)`` weights applied as ``[x || Ax] @ W + b``,
    ``classifier.{0,1,2}``) onto :class:`~ltc_pyg.nn.models.LGCN`."""
    convs = sorted((key for key in state_dict
                    if key.startswith('conv') and key.endswith('.weight')),
                   key=lambda key: int(key[4:-7]))
    if not convs or 'bn0.running_mean' not in state_dict:
        raise ValueError(f"Not an original lgcn state dict: expected 'bn0.*' "
                         f"and 'conv<i>.weight' keys (got "
                         f'{sorted(state_dict)})')
    converted = {}
    for key, value in state_dict.items():
        if key.startswith('bn0.'):
            converted[f'norm.{key[4:]}'] = value
        elif key.startswith('classifier.'):
            converted[f'head.{key[11:]}'] = value
    for i, key in enumerate(convs):
        weight, half = state_dict[key], state_dict[key].size(0) // 2
        prefix = f'convs.{i}'
        converted[f'{prefix}.lin_root.weight'] = weight[:half].t().contiguous()
        converted[f'{prefix}.lin_rel.weight'] = weight[half:].t().contiguous()
        converted[f'{prefix}.lin_rel.bias'] = state_dict[f'{key[:-7]}.bias']
    return converted


def _collate(transform: PivotSubgraphs, graph: Data,
             pivots: list[Tensor]) -> Batch:
    return transform.subgraphs(graph, torch.stack(pivots))


class LGCNMethod(ClusteringMethod):
    r"""Pivot subgraphs, L-GCN linkage and pseudo-label propagation (see the
    module docstring)."""
    name = 'lgcn'
    Params = LGCNParams
    trainable = True

    def __init__(self, params: Any = None, device: str = 'cpu', seed: int = 0,
                 progress_bar: bool | None = None) -> None:
        super().__init__(params, device, seed, progress_bar)
        self.transform = PivotSubgraphs(self.params.k_at_hop,
                                        self.params.active_connection)
        self.model: LGCN | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.step = 0

    def _build(self, in_channels: int) -> LGCN:
        if self.model is None:
            torch.manual_seed(self.seed)
            self.model = LGCN(in_channels,
                              self.params.hidden_channels).to(self.device)
        elif self.model.in_channels != in_channels:
            raise ValueError(f'The L-GCN model takes {self.model.in_channels} '
                             f'features but the graph has {in_channels}; was '
                             f'it trained on another embedding?')
        return self.model

    def _logits(self, batch: Batch) -> Tensor:
        adj_t = to_sparse_adjacency(batch.edge_index, batch.edge_weight,
                                    batch.num_nodes)
        return self.model(batch.x.to(self.device), adj_t.to(self.device),
                          batch.one_hop_index.to(self.device))

    def _show(self, num_steps: int) -> bool:
        if self.progress_bar is None:
            return num_steps > 20
        return self.progress_bar

    def fit(self, graph: Data, timer: StageTimer | None = None,
            save: Callable[[], None] | None = None) -> None:
        timer = timer or StageTimer()
        train = self.params.train
        model = self._build(graph.x.size(1))
        if self.optimizer is None:
            self.optimizer = self._make_optimizer(model)
        pivots = (graph.y >= 0).nonzero().view(-1)
        if pivots.numel() == 0:
            raise ValueError('Training lgcn needs labelled nodes (all labels '
                             'are -1)')
        per_epoch = min(pivots.numel(), train.max_pivots or pivots.numel())
        steps_per_epoch = math.ceil(per_epoch / train.batch_size)
        total = train.epochs * steps_per_epoch
        logger.info('Training L-GCN on %d of %d labelled pivots per epoch, '
                    '%d steps of %d', per_epoch, pivots.numel(), total,
                    train.batch_size)
        bar = tqdm(total=total, initial=self.step, desc='L-GCN training',
                   disable=not self._show(total - self.step))
        with timer('L-GCN training'):
            while self.step < total:
                epoch, first = divmod(self.step, steps_per_epoch)
                generator = torch.Generator().manual_seed(
                    self.seed * 1_000_003 + epoch)
                order = pivots[torch.randperm(pivots.numel(),
                                              generator=generator)]
                loader = DataLoader(
                    order[first * train.batch_size:per_epoch],
                    batch_size=train.batch_size,
                    collate_fn=partial(_collate, self.transform, graph))
                for batch in loader:
                    loss = self._train_step(batch)
                    bar.update()
                    bar.set_postfix(epoch=epoch, loss=f'{loss:.4f}')
                    if (save is not None and train.save_every
                            and self.step % train.save_every == 0
                            and self.step < total):
                        save()
        bar.close()

    def _make_optimizer(self, model: LGCN) -> torch.optim.Optimizer:
        train = self.params.train
        if train.optimizer == 'adam':
            return torch.optim.Adam(model.parameters(), lr=train.lr,
                                    weight_decay=train.weight_decay)
        return torch.optim.SGD(model.parameters(), lr=train.lr,
                               momentum=train.momentum,
                               weight_decay=train.weight_decay)

    def _train_step(self, batch: Batch) -> float:
        self.model.train()
        loss = F.cross_entropy(self._logits(batch), batch.y.to(self.device))
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.step += 1
        value = loss.item()
        if not math.isfinite(value):
            raise RuntimeError(f'L-GCN training diverged at step {self.step} '
                               f'(loss {value}); lower train.lr')
        return value

    @torch.no_grad()
    def linkage(self, graph: Data, pivots: Tensor | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        r"""Scores every pivot -> one-hop pair with the model, mini-batched
        over pivots.

        Args:
            graph (Data): The affinity graph.
            pivots (Tensor, optional): ``[P]`` pivot ids (default: every
                node, ascending).

        Returns:
            (np.ndarray, np.ndarray): int64 pairs ``[P k_1, 2]`` (pivot,
            one-hop node; pivots in the given order, one-hop nodes in kNN
            order) and float32 linkage probabilities ``[P k_1]``.
        """
        if self.model is None:
            raise ValueError("'lgcn' has no trained model; train one or give "
                             'a checkpoint')
        self._build(graph.x.size(1)).eval()
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
        for start in tqdm(range(0, num_pivots, size), desc='L-GCN linkage',
                          disable=not self._show(num_pivots // size)):
            chunk = pivots[start:start + size]
            clock = time.perf_counter()
            batch = self.transform.subgraphs(graph, chunk)
            seconds['subgraphs'] += time.perf_counter() - clock
            clock = time.perf_counter()
            probability = self._logits(batch).softmax(dim=1)[:, 1]
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

    def predict(self, graph: Data,
                timer: StageTimer | None = None) -> np.ndarray:
        timer = timer or StageTimer()
        with timer('L-GCN linkage'):
            pairs, scores = self.linkage(graph)
        with timer('L-GCN propagation'):
            labels = dynamic_threshold_components(
                pairs, scores, graph.num_nodes, self.params.max_size,
                self.params.step, self.params.pool)
            return relabel_by_first_appearance(labels)

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        if getattr(self, 'linkage_seconds_', None) is not None:
            described['linkage_seconds'] = self.linkage_seconds_
        return described

    def state_dict(self) -> dict[str, Any]:
        if self.model is None:
            raise ValueError("'lgcn' has no model to save yet")
        return {'in_channels': self.model.in_channels,
                'model': self.model.state_dict(),
                'optimizer': (None if self.optimizer is None
                              else self.optimizer.state_dict()),
                'step': self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model = None
        model = self._build(int(state['in_channels']))
        model.load_state_dict(state['model'])
        self.optimizer = None
        if state.get('optimizer') is not None:
            self.optimizer = self._make_optimizer(model)
            self.optimizer.load_state_dict(state['optimizer'])
        self.step = int(state.get('step', 0))

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
        self.model = None
        self._build(in_channels).load_state_dict(converted)
        self.optimizer = None
        self.step = 0
