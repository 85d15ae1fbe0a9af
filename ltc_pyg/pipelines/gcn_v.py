r"""The ``gcn-v`` and ``gcn-v+e`` methods of "Learning to Cluster Faces via
Confidence and Connectivity Estimation" (`Yang et al., CVPR 2020
<https://arxiv.org/abs/2004.00445>`_).

* ``gcn-v``: :class:`~ltc_pyg.nn.models.GCNV` regresses a confidence per
  node on the whole kNN graph; each node links to its most similar neighbour
  of higher confidence (``max_conn``), links above a similarity threshold
  are kept and merged by connected components. With ``use_gcn_feat`` (the
  paper's setting) the kNN graph is rebuilt on GCN-V's hidden features and
  cut at ``tau``; otherwise the input kNN is cut at ``tau_0``.
* ``gcn-v+e`` (also registered as ``gcn-e``, the name used for training
  it): GCN-V's confidences and features, then
  :class:`~ltc_pyg.nn.models.GCNE` picks the link of each node with several
  higher-confidence candidates (:mod:`ltc_pyg.proposals.candidates`); links
  above ``tau`` merge.

Checkpoints: a ``gcn-v+e`` checkpoint of ours holds both models, so
``ltc-pyg cluster --method gcn-v+e --checkpoint C`` needs one file. GCN-E is
trained on top of a GCN-V: either the one in ``gcn_v_checkpoint`` or, when
that is unset, one trained first in the same run. The original project's
released files are given as ``--checkpoint gcn_v.pth`` (``gcn-v``) and
``--checkpoint gcn_e.pth --param gcn_v_checkpoint=gcn_v.pth`` (``gcn-v+e``).
"""
from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
import torch_geometric.transforms as T
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.typing import SparseTensor
from tqdm.auto import tqdm

from ltc_pyg.cluster.peaks import Peaks, confidence_to_peaks, peaks_to_labels
from ltc_pyg.config import check_ranges
from ltc_pyg.graph.confidence import ConfidenceMetric, confidence_targets
from ltc_pyg.graph.knn import knn_search, l2_normalize
from ltc_pyg.graph.transforms import (
    KNNAffinityGraph,
    RowNormalize,
    SparseLayout,
    ToSparseAdjacency,
)
from ltc_pyg.nn.models import GCNE, GCNV
from ltc_pyg.pipelines.methods import ClusteringMethod
from ltc_pyg.pipelines.report import StageTimer
from ltc_pyg.proposals.candidates import (
    CandidateSubgraphs,
    csr_arrays,
    pick_per_subgraph,
    select_candidates,
)

logger = logging.getLogger(__name__)

GCNFeatureKNN = Literal['flat', 'ivf', 'hnsw', 'rerank']


@dataclass(frozen=True)
class TrainParams:
    r"""A training schedule.

    Args:
        steps (int): Optimiser steps.
        optimizer (str): ``'sgd'`` (with ``momentum``) or ``'adam'``.
        lr (float): Initial learning rate.
        momentum (float): SGD momentum.
        weight_decay (float): L2 penalty.
        milestones (tuple of float): Fractions of ``steps`` after which the
            learning rate is multiplied by ``gamma`` (the original "step"
            policy at 0.5, 0.8 and 0.9 of training).
        gamma (float): Learning-rate factor at each milestone.
        batch_size (int, optional): GCN-V: seed nodes per step (their exact
            one-hop neighbourhood is gathered); ``None`` trains on the full
            graph. GCN-E: candidate subgraphs per step.
        save_every (int): Steps between checkpoints (``0``: at the end only).
    """
    steps: int = 200
    optimizer: Literal['sgd', 'adam'] = 'sgd'
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-5
    milestones: tuple[float, ...] = (0.5, 0.8, 0.9)
    gamma: float = 0.1
    batch_size: int | None = None
    save_every: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0 or self.lr <= 0:
            raise ValueError(f'train needs steps >= 0 and lr > 0 (got steps='
                             f'{self.steps}, lr={self.lr})')
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f'train.batch_size must be positive (got '
                             f'{self.batch_size})')

    def lr_at(self, step: int) -> float:
        r"""The learning rate of step ``step`` (0-based)."""
        passed = sum(step >= m * self.steps for m in self.milestones)
        return self.lr * self.gamma**passed


@dataclass(frozen=True)
class GCNVParams:
    r"""Parameters of ``gcn-v`` (defaults: the MS1M configs of the paper).

    Args:
        hidden_channels (int): GCN-V hidden size.
        dropout (float): Dropout after the convolution.
        confidence (str): Training target (see
            :class:`~ltc_pyg.graph.confidence.ConfidenceTargets`).
        density_radius (float): Radius of the ``'density'`` target.
        min_similarity (float): kNN edges below this similarity are left out
            of the adjacency (the original ``th_sim``).
        max_conn (int): Peaks per node.
        tau_0 (float): Link threshold on the input kNN similarities (used
            without ``use_gcn_feat``).
        tau (float): Link threshold on GCN-feature similarities (used with
            ``use_gcn_feat``).
        use_gcn_feat (bool): Rebuild the kNN graph on GCN-V's hidden
            features for peaks (and GCN-E).
        gcn_feat_knn (str): How: a faiss search (``'flat'``, ``'ivf'``,
            ``'hnsw'``), or ``'rerank'``, which re-sorts each input kNN row by
            GCN-feature similarity (no search; for very large graphs).
        gcn_feat_k (int, optional): Its row length, the node itself
            included; the input graph's ``k`` if omitted (at most that with
            ``'rerank'``).
        inference_batch_size (int): Nodes per chunk of full-graph inference.
        sparse_layout (str): Sparse adjacency of the convolutions:
            ``'csr'`` (torch) or ``'sparse_tensor'`` (needs torch-sparse).
        train (TrainParams): The schedule.
    """
    hidden_channels: int = 512
    dropout: float = 0.0
    confidence: ConfidenceMetric = 's_nbr'
    density_radius: float = 0.5
    min_similarity: float = 0.0
    max_conn: int = 1
    tau_0: float = 0.65
    tau: float = 0.8
    use_gcn_feat: bool = True
    gcn_feat_knn: GCNFeatureKNN = 'flat'
    gcn_feat_k: int | None = None
    inference_batch_size: int = 65536
    sparse_layout: SparseLayout = 'csr'
    train: TrainParams = field(default_factory=TrainParams)

    def __post_init__(self) -> None:
        check_ranges(self, positive=('hidden_channels', 'max_conn',
                                     'gcn_feat_k', 'inference_batch_size'),
                     fractions=('dropout',))


@dataclass(frozen=True)
class GCNVEParams:
    r"""Parameters of ``gcn-v+e``.

    Args:
        gcn_v (GCNVParams): The GCN-V part (its ``use_gcn_feat`` also makes
            GCN-E work on GCN-V's hidden features and their kNN graph).
        gcn_v_checkpoint (str, optional): A trained ``gcn-v`` (ours, or the
            original ``gcn_v.pth``) to build on instead of training one.
        hidden_channels (int): GCN-E hidden size.
        dropout (float): GCN-E dropout.
        ignore_ratio (float): Least confident fraction linked without GCN-E
            at inference.
        train_ignore_ratio (float): The same when training.
        tau (float): Link threshold on the similarity to the chosen peak.
        inference_batch_size (int): Subgraphs per chunk at inference.
        train (TrainParams): GCN-E's schedule (``batch_size`` = subgraphs).
    """
    gcn_v: GCNVParams = field(default_factory=GCNVParams)
    gcn_v_checkpoint: str | None = None
    hidden_channels: int = 512
    dropout: float = 0.0
    ignore_ratio: float = 0.8
    train_ignore_ratio: float = 0.7
    tau: float = 0.8
    inference_batch_size: int = 2048
    train: TrainParams = field(default_factory=lambda: TrainParams(
        batch_size=32))

    def __post_init__(self) -> None:
        check_ranges(self, positive=('hidden_channels', 'inference_batch_size'),
                     fractions=('dropout', 'ignore_ratio',
                                'train_ignore_ratio'))


# The original projects' state-dict names -> ours.
def _convert_graph_conv(weight: Tensor, bias: Tensor, prefix: str
                        ) -> dict[str, Tensor]:
    r"""An original ``(2 in, out)`` weight applied as ``[x || Ax] @ W + b``
    as PyG GraphConv's ``lin_root`` / ``lin_rel``."""
    half = weight.size(0) // 2
    return {f'{prefix}.lin_root.weight': weight[:half].t().contiguous(),
            f'{prefix}.lin_rel.weight': weight[half:].t().contiguous(),
            f'{prefix}.lin_rel.bias': bias}


def _convert_head(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    return {key.replace('classifier.', 'head.'): value
            for key, value in state_dict.items()
            if key.startswith('classifier.')}


def convert_original_gcn_v(state_dict: dict[str, Tensor]
                           ) -> dict[str, Tensor]:
    r"""Maps the original ``gcn_v`` state dict (``conv1.weight (2F, H)``,
    ``classifier.{0,1,2}``) onto :class:`~ltc_pyg.nn.models.GCNV`."""
    expected = {'conv1.weight', 'conv1.bias', 'classifier.0.weight',
                'classifier.0.bias', 'classifier.1.weight',
                'classifier.2.weight', 'classifier.2.bias'}
    if set(state_dict) != expected:
        raise ValueError(f'Not an original gcn_v state dict: expected keys '
                         f'{sorted(expected)} (got {sorted(state_dict)})')
    return {**_convert_graph_conv(state_dict['conv1.weight'],
                                  state_dict['conv1.bias'], 'conv'),
            **_convert_head(state_dict)}


def convert_original_gcn_e(state_dict: dict[str, Tensor]
                           ) -> dict[str, Tensor]:
    r"""Maps the original ``gcn_e`` state dict (``conv1..4``,
    ``classifier.{0,1,2}``) onto :class:`~ltc_pyg.nn.models.GCNE`."""
    convs = [f'conv{i}.weight' for i in range(1, 5)]
    if not all(key in state_dict for key in convs):
        raise ValueError(f'Not an original gcn_e state dict: expected '
                         f'{convs} (got {sorted(state_dict)})')
    converted = _convert_head(state_dict)
    for i in range(4):
        converted.update(_convert_graph_conv(
            state_dict[f'conv{i + 1}.weight'], state_dict[f'conv{i + 1}.bias'],
            f'convs.{i}'))
    return converted


def gcn_adjacency(x: Tensor, neighbor: Tensor, similarity: Tensor,
                  min_similarity: float | None = 0.0,
                  layout: SparseLayout = 'csr') -> Tensor | SparseTensor:
    r"""The GCN-V/GCN-E adjacency ``adj_t`` (sparse ``[N, N]``, ``layout``
    as in :func:`~ltc_pyg.graph.transforms.to_sparse_adjacency`):
    :math:`\mathbf{D}^{-1}(\max(\mathbf{A}, \mathbf{A}^\top) + \mathbf{I})`
    of the kNN similarities, composed from the foundation transforms."""
    transform = T.Compose([
        KNNAffinityGraph(neighbor.size(1), min_similarity=min_similarity,
                         symmetric=True, self_loops=True),
        RowNormalize(),
        ToSparseAdjacency(layout, remove_edge_index=True)])
    data = Data(x=x, knn_neighbor=neighbor, knn_similarity=similarity,
                num_nodes=x.size(0))
    return transform(data).adj_t


def adjacency_rows(adj_t: Tensor | SparseTensor, rows: Tensor
                   ) -> tuple[Tensor | SparseTensor, Tensor]:
    r"""The rows ``rows`` of a sparse ``adj_t`` as a bipartite ``[B, U]``
    adjacency of the same kind over the ``U`` distinct columns they touch.

    Returns:
        (Tensor, Tensor): the sub-adjacency and ``n_id`` ``[U]``, the global
        ids of its columns (ascending).
    """
    rowptr, col, value = csr_arrays(adj_t)
    start, count = rowptr[rows], rowptr[rows + 1] - rowptr[rows]
    sub_rowptr = torch.cat([count.new_zeros(1), count.cumsum(0)])
    position = (torch.arange(int(sub_rowptr[-1]), device=rows.device)
                + torch.repeat_interleave(start - sub_rowptr[:-1], count))
    columns = col[position]
    used = torch.zeros(adj_t.size(1), dtype=torch.bool, device=rows.device)
    used[columns] = True
    n_id = used.nonzero().view(-1)
    local = (used.cumsum(0) - 1)[columns]  # global -> position in n_id
    if isinstance(adj_t, SparseTensor):
        return SparseTensor(rowptr=sub_rowptr, col=local,
                            value=value[position],
                            sparse_sizes=(rows.numel(), n_id.numel()),
                            is_sorted=True, trust_data=True), n_id
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='Sparse CSR')
        sub = torch.sparse_csr_tensor(sub_rowptr, local, value[position],
                                      (rows.numel(), n_id.numel()),
                                      check_invariants=False)
    return sub, n_id


def _optimizer(model: torch.nn.Module, train: TrainParams
               ) -> torch.optim.Optimizer:
    if train.optimizer == 'adam':
        return torch.optim.Adam(model.parameters(), lr=train.lr,
                                weight_decay=train.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=train.lr,
                           momentum=train.momentum,
                           weight_decay=train.weight_decay)


def _train_loop(name: str, train: TrainParams, start: int,
                step_fn: Callable[[int, float], float],
                save: Callable[[], None] | None,
                progress_bar: bool | None) -> None:
    r"""Runs steps ``start..train.steps - 1`` of ``step_fn(step, lr)`` (which
    returns the loss) with a progress bar showing the loss, saving every
    ``train.save_every`` steps."""
    if progress_bar is None:
        progress_bar = train.steps - start > 20
    bar = tqdm(range(start, train.steps), desc=f'{name} training',
               disable=not progress_bar, initial=start, total=train.steps)
    for step in bar:
        loss = step_fn(step, train.lr_at(step))
        bar.set_postfix(loss=f'{loss:.4f}')
        if not math.isfinite(loss):
            raise RuntimeError(f'{name} training diverged at step {step} '
                               f'(loss {loss}); lower train.lr')
        done = step + 1
        if (save is not None and train.save_every
                and done % train.save_every == 0 and done < train.steps):
            save()
    logger.info('%s trained to step %d', name, train.steps)


class GCNVMethod(ClusteringMethod):
    r"""GCN-V confidences, peaks and thresholded links (see the module
    docstring)."""
    name = 'gcn-v'
    Params = GCNVParams
    trainable = True

    def __init__(self, params: Any = None, device: str = 'cpu', seed: int = 0,
                 progress_bar: bool | None = None) -> None:
        super().__init__(params, device, seed, progress_bar)
        self.model: GCNV | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.step = 0

    def _build(self, in_channels: int) -> GCNV:
        if self.model is None:
            torch.manual_seed(self.seed)
            self.model = GCNV(in_channels, self.params.hidden_channels,
                              self.params.dropout).to(self.device)
        elif self.model.in_channels != in_channels:
            raise ValueError(f'The GCN-V model takes {self.model.in_channels} '
                             f'features but the graph has {in_channels}; was '
                             f'it trained on another embedding?')
        return self.model

    def fit(self, graph: Data, timer: StageTimer | None = None,
            save: Callable[[], None] | None = None) -> None:
        timer = timer or StageTimer()
        params, train = self.params, self.params.train
        with timer('GCN-V targets + adjacency'):
            target = confidence_targets(graph, params.confidence,
                                        params.density_radius)
            adj_t = gcn_adjacency(graph.x, graph.knn_neighbor,
                                  graph.knn_similarity, params.min_similarity,
                                  params.sparse_layout)
        model = self._build(graph.x.size(1))
        if self.optimizer is None:
            self.optimizer = _optimizer(model, train)
        x, target = graph.x.to(self.device), target.to(self.device)
        adj_t = adj_t.to(self.device)
        num_nodes = x.size(0)

        def step_fn(step: int, lr: float) -> float:
            for group in self.optimizer.param_groups:
                group['lr'] = lr
            model.train()
            if train.batch_size is None or train.batch_size >= num_nodes:
                prediction = model(x, adj_t).confidence
                loss = F.mse_loss(prediction, target)
            else:
                generator = torch.Generator().manual_seed(
                    self.seed * 1_000_003 + step)
                seeds = torch.randperm(num_nodes, generator=generator)[
                    :train.batch_size].to(self.device)
                sub_adj, n_id = adjacency_rows(adj_t, seeds)
                prediction = model((x[n_id], x[seeds]), sub_adj).confidence
                loss = F.mse_loss(prediction, target[seeds])
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.step = step + 1
            return loss.item()

        with timer('GCN-V training'):
            _train_loop('GCN-V', train, self.step, step_fn, save,
                        self.progress_bar)

    @torch.no_grad()
    def infer(self, graph: Data, timer: StageTimer | None = None
              ) -> tuple[Tensor, Tensor]:
        r"""GCN-V on the whole graph, in chunks of
        ``inference_batch_size`` target nodes over the sparse adjacency.

        Returns:
            (Tensor, Tensor): confidences ``[N]`` and hidden features
            ``[N, H]`` (on the CPU).
        """
        if self.model is None:
            raise ValueError("'gcn-v' has no trained model; train one or give "
                             "a checkpoint")
        timer = timer or StageTimer()
        model = self._build(graph.x.size(1)).eval()
        with timer('GCN-V adjacency'):
            adj_t = gcn_adjacency(graph.x, graph.knn_neighbor,
                                  graph.knn_similarity,
                                  self.params.min_similarity,
                                  self.params.sparse_layout).to(self.device)
        x = graph.x.to(self.device)
        num_nodes, size = x.size(0), self.params.inference_batch_size
        confidence = torch.empty(num_nodes)
        hidden = torch.empty(num_nodes, self.params.hidden_channels)
        with timer('GCN-V inference'):
            for start in tqdm(range(0, num_nodes, size), desc='GCN-V',
                              disable=not self._show(num_nodes)):
                rows = torch.arange(start, min(start + size, num_nodes),
                                    device=self.device)
                sub_adj, n_id = adjacency_rows(adj_t, rows)
                out = model((x[n_id], x[rows]), sub_adj)
                confidence[start:start + rows.numel()] = out.confidence.cpu()
                hidden[start:start + rows.numel()] = out.hidden.cpu()
        return confidence, hidden

    def _show(self, num_nodes: int) -> bool:
        return (num_nodes > 100_000 if self.progress_bar is None
                else self.progress_bar)

    def gcn_feature_knn(self, graph: Data, hidden: Tensor
                        ) -> tuple[Tensor, Tensor]:
        r"""The kNN graph of the L2-normalised hidden features (see
        ``gcn_feat_knn`` and ``gcn_feat_k``)."""
        features = l2_normalize(hidden.numpy())
        zero = ~hidden.any(dim=1).numpy()
        if zero.any():
            # All-zero ReLU rows have no direction: give them random ones,
            # which makes them near-orthogonal to every other node.
            logger.warning('%d nodes have all-zero GCN features; they get '
                           'random directions', int(zero.sum()))
            rng = np.random.default_rng(self.seed)
            features[zero] = l2_normalize(rng.standard_normal(
                (int(zero.sum()), features.shape[1])))
        k = self.params.gcn_feat_k or graph.knn_neighbor.size(1)
        method = self.params.gcn_feat_knn
        if method == 'rerank' and k > graph.knn_neighbor.size(1):
            raise ValueError(f"gcn_feat_knn='rerank' re-sorts the input kNN "
                             f'rows (k={graph.knn_neighbor.size(1)}) and '
                             f'cannot give gcn_feat_k={k}')
        if method != 'rerank':
            knn = knn_search(features, k, method, normalize=False,
                             seed=self.seed,
                             progress_bar=self._show(features.shape[0]))
            return torch.from_numpy(knn.neighbor), torch.from_numpy(
                knn.similarity)
        neighbor = graph.knn_neighbor[:, :k]
        features_t = torch.from_numpy(features)
        similarity = torch.empty(neighbor.shape)
        chunk = 4096  # gathers chunk x k x H floats at a time
        for start in range(0, neighbor.size(0), chunk):
            stop = start + chunk
            similarity[start:stop] = torch.einsum(
                'nkd,nd->nk', features_t[neighbor[start:stop]],
                features_t[start:stop])
        # Self (similarity 1) stays first: ties sort by the original order.
        similarity, order = torch.sort(similarity, dim=1, descending=True,
                                       stable=True)
        return neighbor.gather(1, order), similarity

    @property
    def link_threshold(self) -> float:
        r"""``tau`` with ``use_gcn_feat``, else ``tau_0``."""
        return getattr(self.params, self.threshold_name)

    @property
    def threshold_name(self) -> str:
        return 'tau' if self.params.use_gcn_feat else 'tau_0'

    def predict_peaks(self, graph: Data,
                      timer: StageTimer | None = None) -> Peaks:
        r"""Everything before the threshold: the peaks of every node (on
        the GCN-feature kNN with ``use_gcn_feat``)."""
        timer = timer or StageTimer()
        confidence, hidden = self.infer(graph, timer)
        if self.params.use_gcn_feat:
            with timer('kNN on GCN features'):
                neighbor, similarity = self.gcn_feature_knn(graph, hidden)
        else:
            neighbor, similarity = graph.knn_neighbor, graph.knn_similarity
        with timer('peaks'):
            return confidence_to_peaks(neighbor, similarity, confidence,
                                       self.params.max_conn)

    def predict(self, graph: Data,
                timer: StageTimer | None = None) -> np.ndarray:
        timer = timer or StageTimer()
        peaks = self.predict_peaks(graph, timer)
        with timer('merge'):
            return peaks_to_labels(peaks, self.link_threshold)

    def state_dict(self) -> dict[str, Any]:
        if self.model is None:
            raise ValueError("'gcn-v' has no trained model to save")
        return {'in_channels': self.model.in_channels,
                'model': self.model.state_dict(),
                'optimizer': (self.optimizer.state_dict()
                              if self.optimizer is not None else None),
                'step': self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model = None
        self._build(int(state['in_channels'])).load_state_dict(state['model'])
        self.step = int(state['step'])
        self.optimizer = None
        if state.get('optimizer') is not None:
            self.optimizer = _optimizer(self.model, self.params.train)
            self.optimizer.load_state_dict(state['optimizer'])

    def load_original_state_dict(self, state_dict: dict[str, Any]) -> None:
        converted = convert_original_gcn_v(state_dict)
        hidden, in2 = state_dict['conv1.weight'].shape[::-1]
        if hidden != self.params.hidden_channels:
            raise ValueError(f'The checkpoint has hidden size {hidden}; set '
                             f'--param hidden_channels={hidden}')
        self.model = None
        self._build(in2 // 2).load_state_dict(converted)


class GCNVEMethod(ClusteringMethod):
    r"""GCN-V confidences plus GCN-E connectivity (see the module
    docstring). Registered as ``gcn-v+e`` and, for training, ``gcn-e``; its
    checkpoints hold both models under the name ``gcn-v+e``."""
    name = 'gcn-v+e'
    Params = GCNVEParams
    trainable = True

    def __init__(self, params: Any = None, device: str = 'cpu', seed: int = 0,
                 progress_bar: bool | None = None) -> None:
        super().__init__(params, device, seed, progress_bar)
        self.gcn_v = GCNVMethod(self.params.gcn_v, device, seed, progress_bar)
        self.model: GCNE | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.step = 0
        self._gcn_v_loaded = False

    def _load_gcn_v(self) -> None:
        r"""Loads ``gcn_v_checkpoint`` into the GCN-V part, once."""
        if self._gcn_v_loaded or self.params.gcn_v_checkpoint is None:
            return
        from ltc_pyg.pipelines.checkpoint import load_method
        loaded = load_method(self.params.gcn_v_checkpoint, 'gcn-v',
                             self.params.gcn_v, device=self.device,
                             seed=self.seed,
                             progress_bar=self.progress_bar)[0]
        self.gcn_v = loaded
        self._gcn_v_loaded = True
        logger.info('GCN-V loaded from %s', self.params.gcn_v_checkpoint)

    def _build(self, in_channels: int) -> GCNE:
        if self.model is None:
            torch.manual_seed(self.seed)
            self.model = GCNE(in_channels, self.params.hidden_channels,
                              self.params.dropout).to(self.device)
        elif self.model.in_channels != in_channels:
            raise ValueError(f'The GCN-E model takes {self.model.in_channels} '
                             f'features but gets {in_channels}')
        return self.model

    def _candidate_graph(self, graph: Data, timer: StageTimer
                         ) -> tuple[Tensor, CandidateSubgraphs]:
        r"""GCN-V on ``graph``, then the inputs of GCN-E: confidences and a
        subgraph builder over the (GCN-feature) kNN graph."""
        confidence, hidden = self.gcn_v.infer(graph, timer)
        if self.params.gcn_v.use_gcn_feat:
            with timer('kNN on GCN features'):
                neighbor, similarity = self.gcn_v.gcn_feature_knn(graph,
                                                                  hidden)
            x = torch.from_numpy(l2_normalize(hidden.numpy()))
        else:
            neighbor, similarity = graph.knn_neighbor, graph.knn_similarity
            x = graph.x
        with timer('GCN-E adjacency'):
            adj_t = gcn_adjacency(x, neighbor, similarity,
                                  self.params.gcn_v.min_similarity)
            labels = graph.y if 'y' in graph else None
            builder = CandidateSubgraphs(x, neighbor, similarity, confidence,
                                         adj_t, labels)
        return confidence, builder

    def fit(self, graph: Data, timer: StageTimer | None = None,
            save: Callable[[], None] | None = None) -> None:
        timer = timer or StageTimer()
        self._load_gcn_v()
        if self.params.gcn_v_checkpoint is None:
            self.gcn_v.fit(graph, timer, save)
        confidence, builder = self._candidate_graph(graph, timer)
        centers = select_candidates(builder.neighbor, confidence,
                                    self.params.train_ignore_ratio).centers
        if centers.numel() == 0:
            raise ValueError('No node has two or more higher-confidence '
                             'candidates; GCN-E has nothing to learn')
        train = self.params.train
        model = self._build(builder.x.size(1))
        if self.optimizer is None:
            self.optimizer = _optimizer(model, train)
        batch_size = min(train.batch_size or 32, centers.numel())

        def step_fn(step: int, lr: float) -> float:
            for group in self.optimizer.param_groups:
                group['lr'] = lr
            generator = torch.Generator().manual_seed(
                self.seed * 1_000_003 + step)
            picked = centers[torch.randperm(centers.numel(),
                                            generator=generator)[:batch_size]]
            batch = builder(picked.sort().values).to(self.device)
            model.train()
            logits = model(batch.x, batch.edge_index, batch.edge_weight)
            loss = F.cross_entropy(logits, batch.y)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.step = step + 1
            return loss.item()

        with timer('GCN-E training'):
            _train_loop('GCN-E', train, self.step, step_fn, save,
                        self.progress_bar)

    @property
    def link_threshold(self) -> float:
        r"""``tau``."""
        return self.params.tau

    @torch.no_grad()
    def predict_peaks(self, graph: Data,
                      timer: StageTimer | None = None) -> Peaks:
        r"""Everything before the threshold: one peak per node, chosen by
        GCN-E for the subgraph centres."""
        timer = timer or StageTimer()
        self._load_gcn_v()
        if self.model is None:
            raise ValueError("'gcn-v+e' has no trained GCN-E; train one or "
                             "give a checkpoint")
        confidence, builder = self._candidate_graph(graph, timer)
        peaks = confidence_to_peaks(builder.neighbor, builder.similarity,
                                    confidence, max_conn=1)
        centers = select_candidates(builder.neighbor, confidence,
                                    self.params.ignore_ratio).centers
        model = self._build(builder.x.size(1)).eval()
        generator = torch.Generator().manual_seed(self.seed)
        size = self.params.inference_batch_size
        with timer('GCN-E inference'):
            for start in tqdm(range(0, centers.numel(), size), desc='GCN-E',
                              disable=not self.gcn_v._show(graph.num_nodes)):
                chunk = centers[start:start + size]
                batch = builder(chunk)
                adj_t = ToSparseAdjacency(self.params.gcn_v.sparse_layout)(
                    batch).adj_t.to(self.device)
                score = model(batch.x.to(self.device), adj_t).log_softmax(
                    dim=-1)[:, 1].cpu()
                chosen = pick_per_subgraph(score, batch.batch, chunk.numel(),
                                           generator)
                peaks.index[chunk, 0] = batch.n_id[chosen]
                peaks.similarity[chunk, 0] = batch.similarity[chosen]
        return peaks

    def predict(self, graph: Data,
                timer: StageTimer | None = None) -> np.ndarray:
        timer = timer or StageTimer()
        peaks = self.predict_peaks(graph, timer)
        with timer('merge'):
            return peaks_to_labels(peaks, self.link_threshold)

    def state_dict(self) -> dict[str, Any]:
        if self.model is None:
            raise ValueError("'gcn-v+e' has no trained GCN-E to save")
        return {'gcn_v': self.gcn_v.state_dict(),
                'in_channels': self.model.in_channels,
                'model': self.model.state_dict(),
                'optimizer': (self.optimizer.state_dict()
                              if self.optimizer is not None else None),
                'step': self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gcn_v.load_state_dict(state['gcn_v'])
        self._gcn_v_loaded = True
        self.model = None
        self._build(int(state['in_channels'])).load_state_dict(state['model'])
        self.step = int(state['step'])
        self.optimizer = None
        if state.get('optimizer') is not None:
            self.optimizer = _optimizer(self.model, self.params.train)
            self.optimizer.load_state_dict(state['optimizer'])

    def load_original_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.params.gcn_v_checkpoint is None:
            raise ValueError('An original gcn_e.pth needs the GCN-V it was '
                             'trained with: add --param '
                             'gcn_v_checkpoint=gcn_v.pth')
        converted = convert_original_gcn_e(state_dict)
        hidden, in2 = state_dict['conv1.weight'].shape[::-1]
        if hidden != self.params.hidden_channels:
            raise ValueError(f'The checkpoint has hidden size {hidden}; set '
                             f'--param hidden_channels={hidden}')
        self.model = None
        self._build(in2 // 2).load_state_dict(converted)
