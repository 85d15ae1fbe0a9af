r"""The ``gcn-d`` and ``gcn-d+s`` methods of "Learning to Cluster Faces on an
Affinity Graph" (`Yang et al., CVPR 2019 <https://arxiv.org/abs/1904.02749>`_).

* ``gcn-d``: multi-scale super-vertex proposals
  (:mod:`ltc_pyg.proposals.super_vertex`) become small graphs
  (:class:`~ltc_pyg.proposals.ProposalGraphs`);
  :class:`~ltc_pyg.nn.models.GCND` regresses each one's IoU (or IoP) with its
  best true cluster; :func:`~ltc_pyg.cluster.deoverlap` gives every face to
  the best-scored proposal containing it.
* ``gcn-d+s`` (also registered as ``gcn-s``, the name used for training
  it): in addition, :class:`~ltc_pyg.nn.models.GCNS` marks each proposal's
  outliers relative to a seed node (a random member in training, the
  central member in inference); they are removed (``th_outlier``) before
  de-overlapping.
* :func:`upper_bound_labels`: the same pipeline scored with the true IoU,
  which tells how good the proposals themselves are.

Checkpoints: a ``gcn-d+s`` checkpoint of ours holds both models, so
``ltc-pyg cluster --method gcn-d+s --checkpoint C`` needs one file. GCN-S is
trained on top of a GCN-D: the one in ``gcn_d_checkpoint`` or, when that is
unset, one trained first in the same run. The original project's released
files are given as ``--checkpoint dsgcn_det.pth`` (``gcn-d``) and
``--checkpoint dsgcn_seg.pth --param gcn_d_checkpoint=dsgcn_det.pth``
(``gcn-d+s``); hidden sizes are read from the weights.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Batch, Data
from tqdm.auto import tqdm

from ltc_pyg.cluster.deoverlap import deoverlap
from ltc_pyg.config import check_ranges
from ltc_pyg.graph.knn import KNNMethod
from ltc_pyg.graph.transforms import to_sparse_adjacency
from ltc_pyg.nn.models import GCND, GCNS
from ltc_pyg.pipelines.methods import ClusteringMethod
from ltc_pyg.pipelines.report import StageTimer
from ltc_pyg.proposals.dataset import ProposalGraphs
from ltc_pyg.proposals.super_vertex import (
    Proposals,
    ProposalSetting,
    generate_proposals,
)

logger = logging.getLogger(__name__)

__all__ = ['DSTrainParams', 'GCNDParams', 'GCNDSParams', 'GCNDMethod',
           'GCNDSMethod', 'graph_proposals', 'upper_bound_labels']

# The 2-proposal MS1M row of the original README (th 0.7 and 0.75).
DEFAULT_PROPOSALS = (ProposalSetting(k=80, th=0.7, step=0.05, max_size=300,
                                     min_size=3),
                     ProposalSetting(k=80, th=0.75, step=0.05, max_size=300,
                                     min_size=3))


@dataclass(frozen=True)
class DSTrainParams:
    r"""A training schedule over proposals.

    Args:
        epochs (int): Passes over the training proposals.
        batch_size (int): Proposals per step.
        optimizer (str): ``'adam'`` or ``'sgd'`` (with ``momentum``).
        lr (float): Learning rate.
        momentum (float): SGD momentum.
        weight_decay (float): L2 penalty.
        milestones (tuple of float): Fractions of ``epochs`` after which the
            learning rate is multiplied by ``gamma``.
        gamma (float): Learning-rate factor at each milestone.
        save_every (int): Epochs between checkpoints (``0``: at the end).
    """
    epochs: int = 10
    batch_size: int = 32
    optimizer: Literal['adam', 'sgd'] = 'adam'
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    milestones: tuple[float, ...] = (0.5, 0.8)
    gamma: float = 0.1
    save_every: int = 1

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(f'train needs epochs >= 0, batch_size >= 1 and '
                             f'lr > 0 (got {self.epochs}, {self.batch_size}, '
                             f'{self.lr})')

    def lr_at(self, epoch: int) -> float:
        r"""The learning rate of epoch ``epoch`` (0-based)."""
        passed = sum(epoch >= m * self.epochs for m in self.milestones)
        return self.lr * self.gamma**passed

    def optimizer_for(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        r"""A fresh optimiser of ``model``'s parameters."""
        if self.optimizer == 'adam':
            return torch.optim.Adam(model.parameters(), lr=self.lr,
                                    weight_decay=self.weight_decay)
        return torch.optim.SGD(model.parameters(), lr=self.lr,
                               momentum=self.momentum,
                               weight_decay=self.weight_decay)


@dataclass(frozen=True)
class GCNDParams:
    r"""Parameters of ``gcn-d`` (defaults: the paper's MS1M model and the
    2-proposal setting).

    Args:
        proposals (tuple of ProposalSetting): Proposal settings (multi-scale,
            with iterative ones nested); thresholds are similarities, so
            they depend on the embedding.
        train_proposals (tuple of ProposalSetting, optional): Settings for
            the training graph (the original trains on 8 settings and tests
            on others); ``proposals`` if omitted.
        proposal_knn (str): kNN search over super-vertices.
        hidden_channels (tuple of int): GCN-D conv sizes.
        dropout (float): Node dropout in training.
        target (str): Regress ``'iou'`` or ``'iop'``.
        weighted (bool): Proposal edges weighted by similarity (the
            original's ``wo_weight=False``) instead of 1.
        th_pos (float, optional): Drop proposals scoring below this.
        th_iou (float): NMS IoU threshold (``1``: no NMS).
        inference_batch_size (int): Proposals per inference batch.
        train (DSTrainParams): The schedule.
    """
    proposals: tuple[ProposalSetting, ...] = DEFAULT_PROPOSALS
    train_proposals: tuple[ProposalSetting, ...] | None = None
    proposal_knn: KNNMethod = 'flat'
    hidden_channels: tuple[int, ...] = (512, 64)
    dropout: float = 0.5
    target: Literal['iou', 'iop'] = 'iou'
    weighted: bool = False
    th_pos: float | None = None
    th_iou: float = 1.0
    inference_batch_size: int = 256
    train: DSTrainParams = field(default_factory=DSTrainParams)

    def __post_init__(self) -> None:
        if not self.proposals:
            raise ValueError('gcn-d needs at least one proposal setting')
        check_ranges(self, positive=('hidden_channels', 'inference_batch_size'),
                     fractions=('dropout',))


@dataclass(frozen=True)
class GCNDSParams:
    r"""Parameters of ``gcn-d+s``.

    Args:
        gcn_d (GCNDParams): The detection part (its proposals are shared).
        gcn_d_checkpoint (str, optional): A trained ``gcn-d`` (ours, or the
            original ``dsgcn_det.pth``) instead of training one.
        hidden_channels (tuple of int): GCN-S conv sizes.
        dropout (float): GCN-S node dropout in training.
        use_seed (bool): Give GCN-S a seed-node indicator.
        compare_to_seed (bool): Give GCN-S the products of each node's
            features with the seed's (:func:`~ltc_pyg.nn.models.
            seed_products`) instead of the raw features. Original
            checkpoints, and ours saved before this option, use ``False``
            whatever this says.
        th_iop_min (float): Train on proposals with IoP at least this...
        th_iop_max (float): ... and at most this (the original's filter).
        th_outlier (float): Members with P(member) at most this are
            removed from their proposal.
        keep_outlier (bool): Keep removed members as extra clusters.
        inference_batch_size (int): Proposals per inference batch.
        train (DSTrainParams): GCN-S's schedule.
    """
    gcn_d: GCNDParams = field(default_factory=GCNDParams)
    gcn_d_checkpoint: str | None = None
    hidden_channels: tuple[int, ...] = (512, 64)
    dropout: float = 0.5
    use_seed: bool = True
    compare_to_seed: bool = True
    th_iop_min: float = 0.1
    th_iop_max: float = 0.9
    th_outlier: float = 0.5
    keep_outlier: bool = False
    inference_batch_size: int = 256
    train: DSTrainParams = field(default_factory=lambda: DSTrainParams(
        batch_size=16))

    def __post_init__(self) -> None:
        check_ranges(self, positive=('hidden_channels', 'inference_batch_size'),
                     fractions=('dropout',))


def graph_proposals(graph: Data, params: GCNDParams, device: str = 'cpu',
                    progress_bar: bool | None = None,
                    training: bool = False) -> Proposals:
    r"""The proposals of ``params.proposals`` (or, with ``training``, of
    ``params.train_proposals`` when set) on an affinity graph."""
    settings = params.proposals
    if training and params.train_proposals is not None:
        settings = params.train_proposals
    return generate_proposals(graph.x.numpy(), graph.knn_neighbor.numpy(),
                              graph.knn_similarity.numpy(), settings,
                              params.proposal_knn, device, progress_bar)[0]


def _dataset(graph: Data, proposals: Proposals, weighted: bool,
             labels: bool, seed_mode: str | None = None,
             seed: int = 0) -> ProposalGraphs:
    return ProposalGraphs(graph.x, graph.knn_neighbor.numpy(),
                          graph.knn_similarity.numpy(), proposals,
                          graph.y.numpy() if labels else None, weighted,
                          seed_mode, seed)


def upper_bound_labels(graph: Data, params: GCNDParams,
                       progress_bar: bool | None = None) -> np.ndarray:
    r"""De-overlaps the proposals of ``params`` scored by their *true* IoU
    (needs ``graph.y``): the best any detector can do with these
    proposals."""
    if 'y' not in graph:
        raise ValueError('The upper bound needs the true labels (graph.y)')
    proposals = graph_proposals(graph, params, progress_bar=progress_bar)
    dataset = _dataset(graph, proposals, params.weighted, labels=True)
    return deoverlap(dataset.targets.iou, proposals, graph.num_nodes,
                     _th_pos(params), params.th_iou)


def _th_pos(params: GCNDParams) -> float:
    return -np.inf if params.th_pos is None else params.th_pos


def _show(progress_bar: bool | None, count: int) -> bool:
    return progress_bar if progress_bar is not None else count > 2000


def _train_epochs(name: str, model: torch.nn.Module,
                  optimizer: torch.optim.Optimizer, train: DSTrainParams,
                  start: int, batches: Callable[[int], Iterator[Batch]],
                  loss_fn: Callable[[Batch], Tensor],
                  done: Callable[[int], None],
                  save: Callable[[], None] | None,
                  progress_bar: bool | None, seed: int) -> None:
    r"""Epochs ``start..train.epochs - 1``: each runs ``loss_fn`` on the
    batches of ``batches(epoch)``, then ``done(epoch + 1)`` and, every
    ``save_every`` epochs, ``save()``. Each epoch reseeds torch (dropout)
    from ``seed`` and its number, so a resumed run repeats a full one."""
    for epoch in range(start, train.epochs):
        torch.manual_seed(seed * 1_000_003 + epoch)
        for group in optimizer.param_groups:
            group['lr'] = train.lr_at(epoch)
        model.train()
        total, count = 0.0, 0
        bar = tqdm(batches(epoch), desc=f'{name} epoch {epoch + 1}/'
                   f'{train.epochs}', disable=not _show(progress_bar, 0),
                   leave=False)
        for batch in bar:
            loss = loss_fn(batch)
            if not math.isfinite(loss.item()):
                raise RuntimeError(f'{name} training diverged in epoch '
                                   f'{epoch} (loss {loss.item()}); lower '
                                   f'train.lr')
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, count = total + loss.item(), count + 1
            bar.set_postfix(loss=f'{loss.item():.4f}')
        logger.info('%s epoch %d/%d: mean loss %.5f over %d batches', name,
                    epoch + 1, train.epochs, total / max(count, 1), count)
        done(epoch + 1)
        if (save is not None and train.save_every
                and (epoch + 1) % train.save_every == 0
                and epoch + 1 < train.epochs):
            save()


def _adjacency(batch: Batch) -> Tensor:
    r"""The batch's proposal edges as a sparse ``adj_t`` on its device, so
    that :class:`~ltc_pyg.nn.conv.DSConv` aggregates by sparse matmul
    instead of building ``[E, F]`` messages (``E`` reaches millions per
    batch: every kNN pair inside up to 300-node proposals)."""
    return to_sparse_adjacency(batch.edge_index, batch.edge_weight,
                               batch.num_nodes).to(batch.x.device)


class GCNDMethod(ClusteringMethod):
    r"""Proposals scored by GCN-D and de-overlapped (see the module
    docstring)."""
    name = 'gcn-d'
    Params = GCNDParams
    trainable = True

    def __init__(self, params: Any = None, device: str = 'cpu', seed: int = 0,
                 progress_bar: bool | None = None) -> None:
        super().__init__(params, device, seed, progress_bar)
        self.model: GCND | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.epoch = 0

    def _build(self, in_channels: int,
               hidden_channels: tuple[int, ...] | None = None) -> GCND:
        if self.model is None:
            torch.manual_seed(self.seed)
            self.model = GCND(in_channels, hidden_channels
                              or self.params.hidden_channels,
                              self.params.dropout).to(self.device)
        elif self.model.in_channels != in_channels:
            raise ValueError(f'The GCN-D model takes {self.model.in_channels} '
                             f'features but the graph has {in_channels}; was '
                             f'it trained on another embedding?')
        return self.model

    def fit(self, graph: Data, timer: StageTimer | None = None,
            save: Callable[[], None] | None = None) -> None:
        timer = timer or StageTimer()
        params, train = self.params, self.params.train
        with timer('proposals'):
            proposals = graph_proposals(graph, params, self.device,
                                        self.progress_bar, training=True)
        if len(proposals) == 0:
            raise ValueError('The proposal settings give no proposals on the '
                             'training graph; lower their th')
        dataset = _dataset(graph, proposals, params.weighted, labels=True)
        model = self._build(graph.x.size(1))
        if self.optimizer is None:
            self.optimizer = train.optimizer_for(model)
        logger.info('Training GCN-D on %d proposals (mean %s %.3f)',
                    len(proposals), params.target,
                    float(getattr(dataset.targets, params.target).mean()))

        def batches(epoch: int) -> Iterator[Batch]:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 +
                                                      epoch)
            return dataset.loader(train.batch_size, shuffle=True,
                                  generator=generator)

        def loss_fn(batch: Batch) -> Tensor:
            batch = batch.to(self.device)
            prediction = model(batch.x, _adjacency(batch), None,
                               batch.batch)
            return F.mse_loss(prediction, batch[params.target])

        with timer('GCN-D training'):
            _train_epochs('GCN-D', model, self.optimizer, train, self.epoch,
                          batches, loss_fn,
                          lambda epoch: setattr(self, 'epoch', epoch), save,
                          self.progress_bar, self.seed)

    @torch.no_grad()
    def score(self, graph: Data, proposals: Proposals) -> np.ndarray:
        r"""GCN-D's score of every proposal, ``[P]``."""
        if self.model is None:
            raise ValueError("'gcn-d' has no trained model; train one or give "
                             "a checkpoint")
        model = self._build(graph.x.size(1)).eval()
        dataset = _dataset(graph, proposals, self.params.weighted,
                           labels=False)
        scores = np.empty(len(proposals), dtype=np.float32)
        size = self.params.inference_batch_size
        for batch in tqdm(dataset.loader(size), desc='GCN-D',
                          total=math.ceil(len(proposals) / size),
                          disable=not _show(self.progress_bar,
                                            len(proposals))):
            batch = batch.to(self.device)
            scores[batch.proposal.cpu().numpy()] = model(
                batch.x, _adjacency(batch), None, batch.batch).cpu().numpy()
        return scores

    def predict(self, graph: Data,
                timer: StageTimer | None = None) -> np.ndarray:
        timer = timer or StageTimer()
        with timer('proposals'):
            proposals = graph_proposals(graph, self.params, self.device,
                                        self.progress_bar)
            self.num_proposals_ = len(proposals)
        with timer('GCN-D inference'):
            scores = self.score(graph, proposals)
        with timer('de-overlap'):
            return deoverlap(scores, proposals, graph.num_nodes,
                             _th_pos(self.params), self.params.th_iou)

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        if getattr(self, 'num_proposals_', None) is not None:
            described['num_proposals'] = self.num_proposals_
        return described

    def state_dict(self) -> dict[str, Any]:
        if self.model is None:
            raise ValueError("'gcn-d' has no trained model to save")
        return {'in_channels': self.model.in_channels,
                'hidden_channels': list(self.model.hidden_channels),
                'model': self.model.state_dict(),
                'optimizer': (self.optimizer.state_dict()
                              if self.optimizer is not None else None),
                'epoch': self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model = None
        self._build(int(state['in_channels']),
                    tuple(state['hidden_channels'])).load_state_dict(
                        state['model'])
        self.epoch = int(state['epoch'])
        self.optimizer = None
        if state.get('optimizer') is not None:
            self.optimizer = self.params.train.optimizer_for(self.model)
            self.optimizer.load_state_dict(state['optimizer'])

    def load_original_state_dict(self, state_dict: dict[str, Any]) -> None:
        in_channels, hidden = _original_sizes(state_dict)
        self.model = None
        self._build(in_channels, hidden).load_original_state_dict(state_dict)


def _original_sizes(state_dict: dict[str, Any]) -> tuple[int, tuple[int,
                                                                    ...]]:
    r"""Input size and conv sizes of an original DS-GCN state dict."""
    weights = sorted((key for key in state_dict
                      if key.endswith('.gc.weight')),
                     key=lambda key: int(key.split('.')[-3]))
    if not weights:
        raise ValueError(f'Not an original DS-GCN state dict: no '
                         f'layers.<i>.gc.weight (keys: {sorted(state_dict)})')
    return (int(state_dict[weights[0]].shape[0]),
            tuple(int(state_dict[key].shape[1]) for key in weights))


class GCNDSMethod(ClusteringMethod):
    r"""GCN-D scores plus GCN-S outlier removal (see the module docstring).
    Registered as ``gcn-d+s`` and, for training, ``gcn-s``; its checkpoints
    hold both models under the name ``gcn-d+s``."""
    name = 'gcn-d+s'
    Params = GCNDSParams
    trainable = True

    def __init__(self, params: Any = None, device: str = 'cpu', seed: int = 0,
                 progress_bar: bool | None = None) -> None:
        super().__init__(params, device, seed, progress_bar)
        self.gcn_d = GCNDMethod(self.params.gcn_d, device, seed, progress_bar)
        self.model: GCNS | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.epoch = 0
        self._gcn_d_loaded = False

    def _load_gcn_d(self) -> None:
        r"""Loads ``gcn_d_checkpoint`` into the GCN-D part, once."""
        if self._gcn_d_loaded or self.params.gcn_d_checkpoint is None:
            return
        from ltc_pyg.pipelines.checkpoint import load_method
        self.gcn_d = load_method(self.params.gcn_d_checkpoint, 'gcn-d',
                                 self.params.gcn_d, device=self.device,
                                 seed=self.seed,
                                 progress_bar=self.progress_bar)[0]
        self._gcn_d_loaded = True
        logger.info('GCN-D loaded from %s', self.params.gcn_d_checkpoint)

    def _build(self, in_channels: int,
               hidden_channels: tuple[int, ...] | None = None,
               compare_to_seed: bool | None = None) -> GCNS:
        if self.model is None:
            torch.manual_seed(self.seed)
            self.model = GCNS(
                in_channels, hidden_channels or self.params.hidden_channels,
                self.params.dropout, self.params.use_seed,
                self.params.compare_to_seed if compare_to_seed is None
                else compare_to_seed).to(self.device)
        elif self.model.in_channels != in_channels:
            raise ValueError(f'The GCN-S model takes {self.model.in_channels} '
                             f'features but the graph has {in_channels}')
        return self.model

    def fit(self, graph: Data, timer: StageTimer | None = None,
            save: Callable[[], None] | None = None) -> None:
        timer = timer or StageTimer()
        params, train = self.params, self.params.train
        self._load_gcn_d()
        if (params.gcn_d_checkpoint is None
                and self.gcn_d.epoch < self.gcn_d.params.train.epochs):
            self.gcn_d.fit(graph, timer, save)
        with timer('proposals'):
            proposals = graph_proposals(graph, params.gcn_d, self.device,
                                        self.progress_bar, training=True)
        seed_mode = 'random' if params.use_seed else None
        dataset = _dataset(graph, proposals, params.gcn_d.weighted,
                           labels=True, seed_mode=seed_mode, seed=self.seed)
        iop = dataset.targets.iop
        chosen = np.flatnonzero((iop >= params.th_iop_min)
                                & (iop <= params.th_iop_max))
        if chosen.size == 0:
            raise ValueError(
                f'No training proposal has IoP in [{params.th_iop_min}, '
                f'{params.th_iop_max}] ({len(proposals)} proposals): GCN-S '
                f'learns from impure proposals; add settings with lower '
                f'thresholds (gcn_d.train_proposals; thresholds are '
                f'similarities on the embedding\'s scale)')
        logger.info('Training GCN-S on %d of %d proposals', chosen.size,
                    len(proposals))
        model = self._build(graph.x.size(1))
        if self.optimizer is None:
            self.optimizer = train.optimizer_for(model)

        def batches(epoch: int) -> Iterator[Batch]:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 +
                                                      epoch)
            return dataset.loader(train.batch_size, shuffle=True,
                                  generator=generator, indices=chosen)

        def loss_fn(batch: Batch) -> Tensor:
            batch = batch.to(self.device)
            out = model(batch.x, _adjacency(batch), None,
                        batch.get('seed_mask'), batch.batch)
            return F.nll_loss(out, batch.node_label)

        with timer('GCN-S training'):
            _train_epochs('GCN-S', model, self.optimizer, train, self.epoch,
                          batches, loss_fn,
                          lambda epoch: setattr(self, 'epoch', epoch), save,
                          self.progress_bar, self.seed)

    @torch.no_grad()
    def member_scores(self, graph: Data, proposals: Proposals) -> np.ndarray:
        r"""GCN-S's P(member) of every membership, aligned with
        ``proposals.nodes``; the seed of each proposal is its central member
        (see :class:`~ltc_pyg.proposals.ProposalGraphs`)."""
        if self.model is None:
            raise ValueError("'gcn-d+s' has no trained GCN-S; train one or "
                             "give a checkpoint")
        model = self._build(graph.x.size(1)).eval()
        dataset = _dataset(graph, proposals, self.params.gcn_d.weighted,
                           labels=False,
                           seed_mode='central' if self.params.use_seed
                           else None)
        scores = np.empty(proposals.nodes.size, dtype=np.float32)
        size, start = self.params.inference_batch_size, 0
        for batch in tqdm(dataset.loader(size), desc='GCN-S',
                          total=math.ceil(len(proposals) / size),
                          disable=not _show(self.progress_bar,
                                            len(proposals))):
            batch = batch.to(self.device)
            out = model(batch.x, _adjacency(batch), None,
                        batch.get('seed_mask'), batch.batch)
            scores[start:start + out.size(0)] = out[:, 1].exp().cpu().numpy()
            start += out.size(0)
        return scores

    def predict(self, graph: Data,
                timer: StageTimer | None = None) -> np.ndarray:
        timer = timer or StageTimer()
        self._load_gcn_d()
        params = self.params
        with timer('proposals'):
            proposals = graph_proposals(graph, params.gcn_d, self.device,
                                        self.progress_bar)
            self.num_proposals_ = len(proposals)
        with timer('GCN-D inference'):
            scores = self.gcn_d.score(graph, proposals)
        with timer('GCN-S inference'):
            members = self.member_scores(graph, proposals)
        with timer('de-overlap'):
            return deoverlap(scores, proposals, graph.num_nodes,
                             _th_pos(params.gcn_d), params.gcn_d.th_iou,
                             members, params.th_outlier, params.keep_outlier)

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        if getattr(self, 'num_proposals_', None) is not None:
            described['num_proposals'] = self.num_proposals_
        return described

    def state_dict(self) -> dict[str, Any]:
        # While GCN-D trains first, checkpoints hold no GCN-S yet.
        model = self.model
        return {'gcn_d': self.gcn_d.state_dict(),
                'in_channels': model.in_channels if model else None,
                'hidden_channels': (list(model.hidden_channels) if model
                                    else None),
                'compare_to_seed': model.compare_to_seed if model else None,
                'model': model.state_dict() if model else None,
                'optimizer': (self.optimizer.state_dict()
                              if self.optimizer is not None else None),
                'epoch': self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gcn_d.load_state_dict(state['gcn_d'])
        self._gcn_d_loaded = True
        self.model = None
        self.optimizer = None
        self.epoch = int(state['epoch'])
        if state['model'] is None:
            return
        self._build(int(state['in_channels']),
                    tuple(state['hidden_channels']),
                    bool(state.get('compare_to_seed', False))
                    ).load_state_dict(state['model'])
        if state.get('optimizer') is not None:
            self.optimizer = self.params.train.optimizer_for(self.model)
            self.optimizer.load_state_dict(state['optimizer'])

    def load_original_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.params.gcn_d_checkpoint is None:
            raise ValueError('An original dsgcn_seg.pth needs a GCN-D: add '
                             '--param gcn_d_checkpoint=dsgcn_det.pth')
        in_channels, hidden = _original_sizes(state_dict)
        self.model = None
        self._build(in_channels - int(self.params.use_seed), hidden,
                    compare_to_seed=False).load_original_state_dict(
                        state_dict)
