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
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.typing import SparseTensor
from tqdm.auto import tqdm

from ltc_pyg.cluster.peaks import Peaks, confidence_to_peaks, peaks_to_labels
from ltc_pyg.config import check_ranges
from ltc_pyg.distributed import (
    all_gather_rows,
    get_rank,
    get_world_size,
    is_main_process,
    node_range,
    run_on_main,
)
from ltc_pyg.graph.confidence import ConfidenceMetric, confidence_targets
from ltc_pyg.graph.knn import l2_normalize
from ltc_pyg.graph.sharded_knn import sharded_knn_search
from ltc_pyg.graph.sparse import (
    adjacency_row_block,
    adjacency_rows,
    gcn_adjacency,
)
from ltc_pyg.graph.transforms import SparseLayout, ToSparseAdjacency
from ltc_pyg.nn.conv import conv_by_name
from ltc_pyg.nn.models import (
    GCNE,
    GCNV,
    convert_original_gcn_e,
    convert_original_gcn_v,
)
from ltc_pyg.pipelines.report import StageTimer
from ltc_pyg.pipelines.training import (
    EpochSampler,
    LearnedMethod,
    TrainingPlan,
    TrainParams,
    step_seed,
)
from ltc_pyg.proposals.candidates import (
    CandidateSubgraphs,
    pick_per_subgraph,
    select_candidates,
)

logger = logging.getLogger(__name__)

#: The thresholds of the original's MS1M test configs
#: (``vegcn/configs/cfg_test_gcn{v,e}_ms1m.py``), for its released
#: checkpoints, which were trained on that embedding.
ORIGINAL_THRESHOLDS = {'tau_0': 0.65, 'tau': 0.8}

GCNFeatureKNN = Literal['flat', 'ivf', 'hnsw', 'rerank']


@dataclass(frozen=True)
class GCNVParams:
    r"""Parameters of ``gcn-v`` (defaults: the MS1M configs of the paper).

    Args:
        hidden_channels (int): GCN-V hidden size.
        dropout (float): Dropout after the convolution.
        conv (str): The graph convolution, a MessagePassing class of
            :mod:`ltc_pyg.nn.conv` or :mod:`torch_geometric.nn` by name
            (see :func:`~ltc_pyg.nn.conv.conv_by_name`).
        confidence (str): Training target (see
            :class:`~ltc_pyg.graph.confidence.ConfidenceTargets`).
        density_radius (float): Radius of the ``'density'`` target.
        min_similarity (float): kNN edges below this similarity are left out
            of the adjacency (the original ``th_sim``).
        max_conn (int): Peaks per node.
        tau_0 (float, optional): Link threshold on the input kNN
            similarities (used without ``use_gcn_feat``).
        tau (float, optional): Link threshold on GCN-feature similarities
            (used with ``use_gcn_feat``). Left ``None``, the one in use is
            chosen on the labelled training split after training (the best
            pairwise F of a sweep; the original's released checkpoints get
            its MS1M values, ``tau_0 = 0.65`` and ``tau = 0.8``).
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
        train (TrainParams): The schedule (``batch_size``: seed nodes per
            step, with their exact one-hop neighbourhood; ``None``: the
            full graph).
    """
    hidden_channels: int = 512
    dropout: float = 0.0
    conv: str = 'GraphConv'
    confidence: ConfidenceMetric = 's_nbr'
    density_radius: float = 0.5
    min_similarity: float = 0.0
    max_conn: int = 1
    tau_0: float | None = None
    tau: float | None = None
    use_gcn_feat: bool = True
    gcn_feat_knn: GCNFeatureKNN = 'flat'
    gcn_feat_k: int | None = None
    inference_batch_size: int = 65536
    sparse_layout: SparseLayout = 'csr'
    train: TrainParams = field(default_factory=lambda: TrainParams(
        steps=200, epochs=None, milestones=(0.5, 0.8, 0.9)))

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
        conv (str): GCN-E's convolution by name, as for ``gcn-v``.
        ignore_ratio (float): Least confident fraction linked without GCN-E
            at inference.
        train_ignore_ratio (float): The same when training.
        tau (float, optional): Link threshold on the similarity to the
            chosen peak; chosen on the training split when left ``None`` (as
            ``gcn-v``'s; 0.8 for the original's released checkpoints).
        inference_batch_size (int): Subgraphs per chunk at inference.
        train (TrainParams): GCN-E's schedule (``batch_size`` = subgraphs).
    """
    gcn_v: GCNVParams = field(default_factory=GCNVParams)
    gcn_v_checkpoint: str | None = None
    hidden_channels: int = 512
    dropout: float = 0.0
    conv: str = 'GraphConv'
    ignore_ratio: float = 0.8
    train_ignore_ratio: float = 0.7
    tau: float | None = None
    inference_batch_size: int = 2048
    train: TrainParams = field(default_factory=lambda: TrainParams(
        steps=200, epochs=None, batch_size=32, milestones=(0.5, 0.8, 0.9)))

    def __post_init__(self) -> None:
        check_ranges(self, positive=('hidden_channels', 'inference_batch_size'),
                     fractions=('dropout', 'ignore_ratio',
                                'train_ignore_ratio'))


def _original_in_channels(state_dict: dict[str, Any],
                          params: GCNVParams | GCNVEParams) -> int:
    r"""The input size of an original GCN-V or GCN-E (``conv1.weight`` is
    ``(2 in, hidden)``), after checking its hidden size against
    ``params``."""
    in2, hidden = state_dict['conv1.weight'].shape
    if hidden != params.hidden_channels:
        raise ValueError(f'The checkpoint has hidden size {hidden}; set '
                         f'--param hidden_channels={hidden}')
    return in2 // 2


class GCNVMethod(LearnedMethod):
    r"""GCN-V confidences, peaks and thresholded links (see the module
    docstring)."""
    name = 'gcn-v'
    shards_inference = True
    label = 'GCN-V'
    Params = GCNVParams

    def build_model(self, in_channels: int) -> GCNV:
        return GCNV(in_channels, self.params.hidden_channels,
                    self.params.dropout, conv_by_name(self.params.conv))

    def prepare_training(self, graph: Data, timer: StageTimer
                         ) -> TrainingPlan:
        params, train = self.params, self.params.train
        with timer('GCN-V targets + adjacency'):
            target = confidence_targets(graph, params.confidence,
                                        params.density_radius)
            adj_t = gcn_adjacency(graph.x, graph.knn_neighbor,
                                  graph.knn_similarity, params.min_similarity,
                                  params.sparse_layout)
        model = self.build(graph.x.size(1))
        x, target = graph.x.to(self.device), target.to(self.device)
        adj_t = adj_t.to(self.device)
        sampler = EpochSampler(x.size(0), train.batch_size, self.seed,
                               train.samples_per_epoch)
        if sampler.whole:  # the full graph every step
            return TrainingPlan(1, lambda step: F.mse_loss(
                model(x, adj_t).confidence, target))

        def loss_at(step: int) -> Tensor:
            seeds = sampler(step).to(self.device)
            sub_adj, n_id = adjacency_rows(adj_t, seeds)
            prediction = model((x[n_id], x[seeds]), sub_adj).confidence
            return F.mse_loss(prediction, target[seeds])

        return TrainingPlan(sampler.steps_per_epoch, loss_at)

    def adjacency(self, graph: Data) -> Tensor | SparseTensor:
        r"""The GCN-V adjacency of ``graph``
        (:func:`~ltc_pyg.graph.sparse.gcn_adjacency` at ``min_similarity``,
        in ``sparse_layout``), on the method's device."""
        return gcn_adjacency(graph.x, graph.knn_neighbor,
                             graph.knn_similarity, self.params.min_similarity,
                             self.params.sparse_layout).to(self.device)

    @torch.no_grad()
    def infer(self, graph: Data, timer: StageTimer | None = None,
              with_hidden: bool = True,
              adj_t: Tensor | SparseTensor | None = None
              ) -> tuple[Tensor, Tensor | None]:
        r"""GCN-V on the whole graph, in chunks of
        ``inference_batch_size`` target nodes over the sparse adjacency
        (under ``torchrun`` each rank computes its range of nodes and the
        ranks gather the results).

        Args:
            graph (Data): The affinity graph.
            timer (StageTimer, optional): Records the stages.
            with_hidden (bool, optional): Keep the hidden features
                (``4 H`` bytes per node: 2 KB at ``H = 512``); only the
                GCN-feature kNN needs them. (default: :obj:`True`)
            adj_t (Tensor or SparseTensor, optional): :meth:`adjacency`,
                when the caller has it already.

        Returns:
            (Tensor, Tensor): confidences ``[N]`` and hidden features
            ``[N, H]`` (on the CPU; :obj:`None` without ``with_hidden``).
        """
        timer = timer or StageTimer()
        model = self.trained_model(graph.x.size(1))
        if adj_t is None:
            with timer('GCN-V adjacency'):
                adj_t = self.adjacency(graph)
        x = graph.x.to(self.device)
        part, size = node_range(x.size(0)), self.params.inference_batch_size
        confidence = torch.empty(len(part))
        hidden = (torch.empty(len(part), self.params.hidden_channels)
                  if with_hidden else None)
        with timer('GCN-V inference'):
            for start in tqdm(range(0, len(part), size), desc='GCN-V',
                              disable=not self._show(x.size(0))):
                stop = min(start + size, len(part))
                first, last = part.start + start, part.start + stop
                out = model((x, x[first:last]),
                            adjacency_row_block(adj_t, first, last))
                confidence[start:stop] = out.confidence.cpu()
                if hidden is not None:
                    hidden[start:stop] = out.hidden.cpu()
            return all_gather_rows(confidence), (
                None if hidden is None else all_gather_rows(hidden))

    def _show(self, num_nodes: int) -> bool:
        return is_main_process() and (
            num_nodes > 100_000 if self.progress_bar is None
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
            knn = sharded_knn_search(
                features, k, method, normalize=False, seed=self.seed,
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
    def threshold_name(self) -> str:
        r"""``tau`` with ``use_gcn_feat``, else ``tau_0``."""
        return 'tau' if self.params.use_gcn_feat else 'tau_0'

    def predict_peaks(self, graph: Data,
                      timer: StageTimer | None = None) -> Peaks:
        r"""Everything before the threshold: the peaks of every node (on
        the GCN-feature kNN with ``use_gcn_feat``)."""
        timer = timer or StageTimer()
        confidence, hidden = self.infer(graph, timer,
                                        self.params.use_gcn_feat)
        if self.params.use_gcn_feat:
            with timer('kNN on GCN features'):
                neighbor, similarity = self.gcn_feature_knn(graph, hidden)
        else:
            neighbor, similarity = graph.knn_neighbor, graph.knn_similarity
        with timer('peaks'):
            return confidence_to_peaks(neighbor, similarity, confidence,
                                       self.params.max_conn)

    def labels_from_peaks(self, peaks: Peaks) -> np.ndarray:
        r"""Everything after :meth:`predict_peaks`: the components of the
        links above the threshold (a threshold sweep computes the peaks
        once and calls this per value)."""
        return peaks_to_labels(peaks, self.threshold)

    def predict(self, graph: Data,
                timer: StageTimer | None = None) -> np.ndarray:
        timer = timer or StageTimer()
        peaks = self.predict_peaks(graph, timer)
        with timer('merge'):  # on rank 0 under torchrun
            return run_on_main(lambda: self.labels_from_peaks(peaks))

    def load_original_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.load_model(convert_original_gcn_v(state_dict),
                        _original_in_channels(state_dict, self.params))
        self.trained_threshold = ORIGINAL_THRESHOLDS[self.threshold_name]


class GCNVEMethod(LearnedMethod):
    r"""GCN-V confidences plus GCN-E connectivity (see the module
    docstring). Registered as ``gcn-v+e`` and, for training, ``gcn-e``; its
    checkpoints hold both models under the name ``gcn-v+e``."""
    name = 'gcn-v+e'
    shards_inference = True
    label = 'GCN-E'
    Params = GCNVEParams
    builds_on = ('gcn-v', 'gcn_v')
    base: GCNVMethod

    def build_model(self, in_channels: int) -> GCNE:
        return GCNE(in_channels, self.params.hidden_channels,
                    self.params.dropout, conv_by_name(self.params.conv))

    def _candidate_graph(self, graph: Data, timer: StageTimer
                         ) -> tuple[Tensor, CandidateSubgraphs]:
        r"""GCN-V on ``graph``, then the inputs of GCN-E: confidences and a
        subgraph builder over the (GCN-feature) kNN graph."""
        use_gcn_feat = self.params.gcn_v.use_gcn_feat
        adj_t = None
        if not use_gcn_feat and (self.base.params.min_similarity
                                 == self.params.gcn_v.min_similarity):
            # GCN-E reads the graph GCN-V reads: one adjacency serves both
            # (the second build took 44 s and peaked 3.2 GB higher at 1.74M).
            with timer('GCN-V adjacency'):
                adj_t = self.base.adjacency(graph)
        confidence, hidden = self.base.infer(graph, timer, use_gcn_feat,
                                             adj_t)
        if use_gcn_feat:
            with timer('kNN on GCN features'):
                neighbor, similarity = self.base.gcn_feature_knn(graph,
                                                                 hidden)
            x = torch.from_numpy(l2_normalize(hidden.numpy()))
        else:
            neighbor, similarity = graph.knn_neighbor, graph.knn_similarity
            x = graph.x
        with timer('GCN-E adjacency'):
            adj_t = (gcn_adjacency(x, neighbor, similarity,
                                   self.params.gcn_v.min_similarity)
                     if adj_t is None else adj_t.cpu())
            labels = graph.y if 'y' in graph else None
            builder = CandidateSubgraphs(x, neighbor, similarity, confidence,
                                         adj_t, labels)
        return confidence, builder

    def prepare_training(self, graph: Data, timer: StageTimer
                         ) -> TrainingPlan:
        confidence, builder = self._candidate_graph(graph, timer)
        centers = select_candidates(builder.neighbor, confidence,
                                    self.params.train_ignore_ratio).centers
        if centers.numel() == 0:
            raise ValueError('No node has two or more higher-confidence '
                             'candidates; GCN-E has nothing to learn')
        model = self.build(builder.x.size(1))
        train = self.params.train
        sampler = EpochSampler(centers.numel(), train.batch_size, self.seed,
                               train.samples_per_epoch)

        def loss_at(step: int) -> Tensor:
            picked = centers[sampler(step)].sort().values
            batch = builder(picked).to(self.device)
            logits = model(batch.x, batch.edge_index, batch.edge_weight)
            return F.cross_entropy(logits, batch.y)

        return TrainingPlan(sampler.steps_per_epoch, loss_at)

    @torch.no_grad()
    def predict_peaks(self, graph: Data,
                      timer: StageTimer | None = None) -> Peaks:
        r"""Everything before the threshold: one peak per node, chosen by
        GCN-E for the subgraph centres."""
        timer = timer or StageTimer()
        self.load_base()
        self.require_model()
        confidence, builder = self._candidate_graph(graph, timer)
        peaks = confidence_to_peaks(builder.neighbor, builder.similarity,
                                    confidence, max_conn=1)
        centers = select_candidates(builder.neighbor, confidence,
                                    self.params.ignore_ratio).centers
        model = self.trained_model(builder.x.size(1))
        size = self.params.inference_batch_size
        # Chunk c breaks its ties with a generator seeded by c, so that the
        # chunks can run anywhere: under torchrun rank r takes chunks
        # r, r + R, ... and the ranks gather the chosen peaks.
        chunks = range(get_rank(), -(-centers.numel() // size),
                       get_world_size())
        done = [torch.empty(0, dtype=torch.long)]
        chosen_peaks = [torch.empty(0, dtype=peaks.index.dtype)]
        chosen_similarity = [torch.empty(0, dtype=peaks.similarity.dtype)]
        with timer('GCN-E inference'):
            for index in tqdm(chunks, desc='GCN-E',
                              disable=not self.base._show(graph.num_nodes)):
                chunk = centers[index * size:(index + 1) * size]
                batch = builder(chunk)
                adj_t = ToSparseAdjacency(self.params.gcn_v.sparse_layout)(
                    batch).adj_t.to(self.device)
                score = model(batch.x.to(self.device), adj_t).log_softmax(
                    dim=-1)[:, 1].cpu()
                generator = torch.Generator().manual_seed(
                    step_seed(self.seed, index))
                chosen = pick_per_subgraph(score, batch.batch, chunk.numel(),
                                           generator)
                done.append(chunk)
                chosen_peaks.append(batch.n_id[chosen])
                chosen_similarity.append(batch.similarity[chosen])
            done = all_gather_rows(torch.cat(done))
            peaks.index[done, 0] = all_gather_rows(torch.cat(chosen_peaks))
            peaks.similarity[done, 0] = all_gather_rows(
                torch.cat(chosen_similarity))
        return peaks

    # Peaks, then links above tau.
    labels_from_peaks = GCNVMethod.labels_from_peaks
    predict = GCNVMethod.predict

    def load_original_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.require_base_checkpoint('gcn_e.pth', 'gcn_v.pth')
        self.load_model(convert_original_gcn_e(state_dict),
                        _original_in_channels(state_dict, self.params))
        self.trained_threshold = ORIGINAL_THRESHOLDS['tau']
