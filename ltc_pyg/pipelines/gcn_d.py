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

import dataclasses
import logging
import math
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
from ltc_pyg.nn.conv import conv_by_name
from ltc_pyg.nn.models import GCND, GCNS, convert_dsgcn_state_dict
from ltc_pyg.pipelines.knn_threshold import KNNThreshold
from ltc_pyg.pipelines.report import StageTimer
from ltc_pyg.pipelines.run import best_threshold, threshold_sweep
from ltc_pyg.pipelines.training import (
    EpochSampler,
    LearnedMethod,
    TrainingPlan,
    TrainParams,
)
from ltc_pyg.proposals.dataset import ProposalGraphs
from ltc_pyg.proposals.super_vertex import (
    Proposals,
    ProposalSetting,
    generate_proposals,
)

logger = logging.getLogger(__name__)

__all__ = ['GCNDParams', 'GCNDSParams', 'GCNDMethod',
           'GCNDSMethod', 'graph_proposals', 'proposal_scale',
           'scaled_settings', 'upper_bound_labels']

#: The similarity at which MS1M's embedding links a pair: its basic
#: proposal setting, the unit of :data:`DEFAULT_PROPOSALS`.
MS1M_LINK_THRESHOLD = 0.7

#: GCN-S's default training settings (MS1M units): it learns from impure
#: proposals, which lower thresholds supply. Trained on CFP with the two
#: defaults alone it left 13,112 clusters of LFW's 13,233 faces (pairwise F
#: 0.003); with these, 0.578.
SEGMENTATION_PROPOSALS = tuple(
    ProposalSetting(k=80, th=th, step=0.05, max_size=300, min_size=3)
    for th in (0.5, 0.6, 0.7, 0.75))

# The 2-proposal MS1M row of the original README (th 0.7 and 0.75).
DEFAULT_PROPOSALS = (ProposalSetting(k=80, th=0.7, step=0.05, max_size=300,
                                     min_size=3),
                     ProposalSetting(k=80, th=0.75, step=0.05, max_size=300,
                                     min_size=3))


@dataclass(frozen=True)
class GCNDParams:
    r"""Parameters of ``gcn-d`` (defaults: the paper's MS1M model and the
    2-proposal setting).

    Args:
        proposals (tuple of ProposalSetting, optional): Proposal settings
            (multi-scale, with iterative ones nested) with thresholds on
            the embedding's own similarity scale; left ``None``, the
            paper's MS1M settings (``th`` 0.7 and 0.75) mapped onto the
            embedding by the scale read from the labelled training split
            (:func:`proposal_scale`, :func:`scaled_settings`).
        train_proposals (tuple of ProposalSetting, optional): Settings for
            the training graph (the original trains on 8 settings and tests
            on others); ``proposals`` if omitted (GCN-S trains, without
            either, on :data:`SEGMENTATION_PROPOSALS`, mapped likewise).
        proposal_knn (str): kNN search over super-vertices.
        hidden_channels (tuple of int): GCN-D conv sizes.
        dropout (float): Node dropout in training.
        conv (str): The convolution by name, as for ``gcn-v``.
        target (str): Regress ``'iou'`` or ``'iop'``.
        weighted (bool): Proposal edges weighted by similarity (the
            original's ``wo_weight=False``) instead of 1.
        th_pos (float, optional): Drop proposals scoring below this.
        th_iou (float): NMS IoU threshold (``1``: no NMS).
        inference_batch_size (int): Proposals per inference batch.
        train (TrainParams): The schedule (``batch_size``: proposals).
    """
    proposals: tuple[ProposalSetting, ...] | None = None
    train_proposals: tuple[ProposalSetting, ...] | None = None
    proposal_knn: KNNMethod = 'flat'
    hidden_channels: tuple[int, ...] = (512, 64)
    dropout: float = 0.5
    conv: str = 'DSConv'
    target: Literal['iou', 'iop'] = 'iou'
    weighted: bool = False
    th_pos: float | None = None
    th_iou: float = 1.0
    inference_batch_size: int = 256
    train: TrainParams = field(default_factory=lambda: TrainParams(
        epochs=10, batch_size=32, optimizer='adam', lr=1e-3,
        weight_decay=1e-4, milestones=(0.5, 0.8), save_every=1))

    def __post_init__(self) -> None:
        if self.proposals is not None and not self.proposals:
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
        conv (str): GCN-S's convolution by name, as for ``gcn-v``.
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
        train (TrainParams): GCN-S's schedule.
    """
    gcn_d: GCNDParams = field(default_factory=GCNDParams)
    gcn_d_checkpoint: str | None = None
    hidden_channels: tuple[int, ...] = (512, 64)
    dropout: float = 0.5
    conv: str = 'DSConv'
    use_seed: bool = True
    compare_to_seed: bool = True
    th_iop_min: float = 0.1
    th_iop_max: float = 0.9
    th_outlier: float = 0.5
    keep_outlier: bool = False
    inference_batch_size: int = 256
    train: TrainParams = field(default_factory=lambda: TrainParams(
        epochs=10, batch_size=16, optimizer='adam', lr=1e-3,
        weight_decay=1e-4, milestones=(0.5, 0.8), save_every=1))

    def __post_init__(self) -> None:
        check_ranges(self, positive=('hidden_channels', 'inference_batch_size'),
                     fractions=('dropout',))


def proposal_scale(graph: Data) -> float:
    r"""The labelled graph's similarity scale relative to MS1M's,
    :math:`s = (1 - t) / (1 - 0.7)`, with :math:`t` the ``knn-threshold``
    threshold of best pairwise F on ``graph`` (a threshold sweep) and 0.7
    MS1M's (:data:`MS1M_LINK_THRESHOLD`); :func:`scaled_settings` maps
    MS1M's settings with it."""
    sweep = threshold_sweep(graph, KNNThreshold(), progress_bar=False)
    return (1 - best_threshold(sweep)) / (1 - MS1M_LINK_THRESHOLD)


def scaled_settings(settings: tuple[ProposalSetting, ...], scale: float
                    ) -> tuple[ProposalSetting, ...]:
    r"""``settings`` in MS1M's units mapped onto an embedding of scale
    :math:`s` (:func:`proposal_scale`): every threshold (basic and
    iterative) by :math:`th \mapsto 1 - (1 - th)\,s`, every split step by
    :math:`step \mapsto s \cdot step` (at most 1).

    The map of thresholds alone would leave a step (a fraction of the gap
    to 1) as it is; scaling it too splits oversized components in finer
    rounds where similarities are compressed. On CFP -> LFW (dlib, s=0.15)
    that gave 0.667 / 0.578 pairwise F for gcn-d / gcn-d+s against 0.644 /
    0.537 with the steps unchanged; on the example's synthetic set (s=1.95)
    0.801 / 0.812 against 0.801 / 0.807."""
    def mapped(setting: Any) -> Any:
        changes = {'th': round(1 - (1 - setting.th) * scale, 4),
                   'step': round(min(1.0, setting.step * scale), 4)}
        if isinstance(setting, ProposalSetting):
            changes['iterations'] = tuple(map(mapped, setting.iterations))
        return dataclasses.replace(setting, **changes)
    return tuple(map(mapped, settings))


def graph_proposals(graph: Data, params: GCNDParams, device: str = 'cpu',
                    progress_bar: bool | None = None,
                    training: bool = False,
                    scale: float | None = None,
                    defaults: tuple[ProposalSetting, ...] = DEFAULT_PROPOSALS
                    ) -> Proposals:
    r"""The proposals of ``params.proposals`` (or, with ``training``, of
    ``params.train_proposals`` when set) on an affinity graph; without
    either, the MS1M settings ``defaults`` mapped by ``scale``
    (:func:`proposal_scale`)."""
    settings = params.proposals
    if training and params.train_proposals is not None:
        settings = params.train_proposals
    if settings is None:
        if scale is None:
            raise ValueError("gcn-d's default proposal settings are in "
                             "MS1M's similarity units and need the scale "
                             'read from a labelled training split: train '
                             'the method, or give proposals on the '
                             "embedding's scale")
        settings = scaled_settings(defaults, scale)
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
    scale = None if params.proposals is not None else proposal_scale(graph)
    proposals = graph_proposals(graph, params, progress_bar=progress_bar,
                                scale=scale)
    dataset = _dataset(graph, proposals, params.weighted, labels=True)
    return deoverlap(dataset.targets.iou, proposals, graph.num_nodes,
                     _th_pos(params), params.th_iou)


def _th_pos(params: GCNDParams) -> float:
    return -np.inf if params.th_pos is None else params.th_pos


def _show(progress_bar: bool | None, count: int) -> bool:
    return progress_bar if progress_bar is not None else count > 2000


def _adjacency(batch: Batch) -> Tensor:
    r"""The batch's proposal edges as a sparse ``adj_t`` on its device, so
    that :class:`~ltc_pyg.nn.conv.DSConv` aggregates by sparse matmul
    instead of building ``[E, F]`` messages (``E`` reaches millions per
    batch: every kNN pair inside up to 300-node proposals)."""
    return to_sparse_adjacency(batch.edge_index, batch.edge_weight,
                               batch.num_nodes).to(batch.x.device)


def _with_proposal_facts(method: LearnedMethod, params: GCNDParams,
                         scale: float | None, described: dict[str, Any]
                         ) -> dict[str, Any]:
    r"""``described`` plus the proposal count of the last prediction and
    the similarity scale the default settings were mapped by."""
    if getattr(method, 'num_proposals_', None) is not None:
        described['num_proposals'] = method.num_proposals_
    if params.proposals is None and scale is not None:
        described['proposal_scale_used'] = scale
    return described


class GCNDMethod(LearnedMethod):
    r"""Proposals scored by GCN-D and de-overlapped (see the module
    docstring)."""
    name = 'gcn-d'
    label = 'GCN-D'
    Params = GCNDParams
    state_attributes = ('proposal_scale',)

    def __init__(self, params: Any = None, device: str = 'cpu', seed: int = 0,
                 progress_bar: bool | None = None) -> None:
        super().__init__(params, device, seed, progress_bar)
        #: The training split's similarity scale (:func:`proposal_scale`),
        #: for the default proposal settings.
        self.proposal_scale: float | None = None

    def build_model(self, in_channels: int,
                    hidden_channels: tuple[int, ...] = ()) -> GCND:
        return GCND(in_channels, hidden_channels
                    or self.params.hidden_channels, self.params.dropout,
                    conv_by_name(self.params.conv))

    def prepare_training(self, graph: Data, timer: StageTimer
                         ) -> TrainingPlan:
        params = self.params
        if params.proposals is None and self.proposal_scale is None:
            with timer('similarity scale'):
                self.proposal_scale = proposal_scale(graph)
            logger.info('Similarity scale of the training split: %.4f '
                        '(MS1M: 1)', self.proposal_scale)
        with timer('proposals'):
            proposals = graph_proposals(graph, params, self.device,
                                        self.progress_bar, training=True,
                                        scale=self.proposal_scale)
        if len(proposals) == 0:
            raise ValueError('The proposal settings give no proposals on the '
                             'training graph; lower their th')
        dataset = _dataset(graph, proposals, params.weighted, labels=True)
        model = self.build(graph.x.size(1),
                           hidden_channels=tuple(params.hidden_channels))
        logger.info('Training GCN-D on %d proposals (mean %s %.3f)',
                    len(proposals), params.target,
                    float(getattr(dataset.targets, params.target).mean()))
        sampler = EpochSampler(len(dataset), params.train.batch_size,
                               self.seed, params.train.samples_per_epoch)

        def loss_at(step: int) -> Tensor:
            batch = dataset.collate(sampler(step).numpy()).to(self.device)
            prediction = model(batch.x, _adjacency(batch), None,
                               batch.batch)
            return F.mse_loss(prediction, batch[params.target])

        return TrainingPlan(sampler.steps_per_epoch, loss_at)

    @torch.no_grad()
    def score(self, graph: Data, proposals: Proposals) -> np.ndarray:
        r"""GCN-D's score of every proposal, ``[P]``."""
        model = self.trained_model(graph.x.size(1))
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
                                        self.progress_bar,
                                        scale=self.proposal_scale)
            self.num_proposals_ = len(proposals)
        with timer('GCN-D inference'):
            scores = self.score(graph, proposals)
        with timer('de-overlap'):
            return deoverlap(scores, proposals, graph.num_nodes,
                             _th_pos(self.params), self.params.th_iou)

    def describe(self) -> dict[str, Any]:
        return _with_proposal_facts(self, self.params, self.proposal_scale,
                                    super().describe())

    def load_original_state_dict(self, state_dict: dict[str, Any]) -> None:
        in_channels, hidden = _original_sizes(state_dict)
        self.load_model(convert_dsgcn_state_dict(state_dict), in_channels,
                        hidden_channels=hidden)
        self.proposal_scale = 1.0  # trained on MS1M


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


class GCNDSMethod(LearnedMethod):
    r"""GCN-D scores plus GCN-S outlier removal (see the module docstring).
    Registered as ``gcn-d+s`` and, for training, ``gcn-s``; its checkpoints
    hold both models under the name ``gcn-d+s``."""
    name = 'gcn-d+s'
    label = 'GCN-S'
    Params = GCNDSParams
    builds_on = ('gcn-d', 'gcn_d')
    # Checkpoints saved before compare_to_seed existed used the raw features.
    legacy_model_kwargs = {'compare_to_seed': False}
    base: GCNDMethod

    def build_model(self, in_channels: int,
                    hidden_channels: tuple[int, ...] = (),
                    compare_to_seed: bool | None = None) -> GCNS:
        params = self.params
        return GCNS(in_channels, hidden_channels or params.hidden_channels,
                    params.dropout, params.use_seed,
                    params.compare_to_seed if compare_to_seed is None
                    else compare_to_seed, conv_by_name(params.conv))

    def prepare_training(self, graph: Data, timer: StageTimer
                         ) -> TrainingPlan:
        params = self.params
        with timer('proposals'):
            proposals = graph_proposals(graph, params.gcn_d, self.device,
                                        self.progress_bar, training=True,
                                        scale=self.base.proposal_scale,
                                        defaults=SEGMENTATION_PROPOSALS)
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
        model = self.build(graph.x.size(1),
                           hidden_channels=tuple(params.hidden_channels),
                           compare_to_seed=params.compare_to_seed)
        sampler = EpochSampler(chosen.size, params.train.batch_size,
                               self.seed, params.train.samples_per_epoch)

        def loss_at(step: int) -> Tensor:
            batch = dataset.collate(chosen[sampler(step).numpy()])
            batch = batch.to(self.device)
            out = model(batch.x, _adjacency(batch), None,
                        batch.get('seed_mask'), batch.batch)
            return F.nll_loss(out, batch.node_label)

        return TrainingPlan(sampler.steps_per_epoch, loss_at)

    @torch.no_grad()
    def member_scores(self, graph: Data, proposals: Proposals) -> np.ndarray:
        r"""GCN-S's P(member) of every membership, aligned with
        ``proposals.nodes``; the seed of each proposal is its central member
        (see :class:`~ltc_pyg.proposals.ProposalGraphs`)."""
        model = self.trained_model(graph.x.size(1))
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
        self.load_base()
        self.require_model()
        params = self.params
        with timer('proposals'):
            proposals = graph_proposals(graph, params.gcn_d, self.device,
                                        self.progress_bar,
                                        scale=self.base.proposal_scale)
            self.num_proposals_ = len(proposals)
        with timer('GCN-D inference'):
            scores = self.base.score(graph, proposals)
        with timer('GCN-S inference'):
            members = self.member_scores(graph, proposals)
        with timer('de-overlap'):
            return deoverlap(scores, proposals, graph.num_nodes,
                             _th_pos(params.gcn_d), params.gcn_d.th_iou,
                             members, params.th_outlier, params.keep_outlier)

    def describe(self) -> dict[str, Any]:
        return _with_proposal_facts(self, self.params.gcn_d,
                                    self.base.proposal_scale,
                                    super().describe())

    def load_original_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.require_base_checkpoint('dsgcn_seg.pth', 'dsgcn_det.pth')
        in_channels, hidden = _original_sizes(state_dict)
        self.load_model(convert_dsgcn_state_dict(state_dict),
                        in_channels - int(self.params.use_seed),
                        hidden_channels=hidden, compare_to_seed=False)
