r"""Methods that choose the edges and let the map equation cluster them.

* ``fc-es`` (no training): neighbour-based edge probabilities, per-row
  early stopping and directed Infomap on the kept links, from "Face
  Clustering via Early Stopping and Edge Recall" (`Liu et al., 2024
  <https://arxiv.org/abs/2408.13431>`_), with one addition: no link below
  a similarity floor (``threshold``, read from the data as Infomap's
  threshold is), which NEP alone cannot replace where most people have
  fewer photos than ``k``.
* ``learned-edges``: an :class:`~ltc_pyg.nn.models.EdgeScorer` trained on a
  labelled split gives every kNN edge a same-identity probability; the
  edges above ``threshold`` (a probability, so the same on every
  embedding) are the links, weighted by their log-odds, that directed
  Infomap clusters; clusters that many links still join are merged
  afterwards (:func:`~ltc_pyg.cluster.merge_linked_clusters`).

Both read their NEP temperature from the data unless it is given:
``fc-es`` from the graph it clusters, ``learned-edges`` from its training
graph (stored in the checkpoint, so that its features mean the same on the
sets it clusters).
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch import Tensor
from torch_geometric.data import Data
from tqdm.auto import tqdm

from ltc_pyg.cluster.map_equation import (
    COARSEN_ABOVE,
    knn_map_equation_clusters,
)
from ltc_pyg.cluster.merge import merge_linked_clusters
from ltc_pyg.cluster.threshold import graph_threshold
from ltc_pyg.distributed import (
    all_gather_rows,
    is_main_process,
    node_range,
    run_on_main,
)
from ltc_pyg.graph.components import relabel_by_first_appearance
from ltc_pyg.graph.edge_probability import (
    EDGE_FEATURES,
    default_temperature,
    early_stop,
    kept_links,
    knn_edge_features,
    neighbor_edge_probability,
)
from ltc_pyg.nn.models.edge_scorer import EdgeScorer
from ltc_pyg.pipelines.methods import ClusteringMethod
from ltc_pyg.pipelines.report import StageTimer
from ltc_pyg.pipelines.training import (
    EpochSampler,
    LearnedMethod,
    TrainingPlan,
    TrainParams,
)

logger = logging.getLogger(__name__)


def _walk(neighbor: Tensor, weight: Tensor, keep: Tensor, num_trials: int,
          seed: int, unlinked_singletons: bool, coarsen_above: int
          ) -> np.ndarray:
    r"""Directed Infomap on the kNN slots kept by the ``[N, k]`` mask
    ``keep``, weighted ``weight`` (``[N, k]``)."""
    labels = knn_map_equation_clusters(neighbor, weight, keep,
                                       num_trials=num_trials, seed=seed,
                                       coarsen_above=coarsen_above)
    if unlinked_singletons:
        labels[~keep.any(dim=1).numpy()] = -1
        labels = relabel_by_first_appearance(labels)
    return labels


@dataclass(frozen=True)
class FCESParams:
    r"""Parameters of ``fc-es``.

    Args:
        temperature (float, optional): NEP softmax temperature :math:`T`;
            read from the data when omitted
            (:func:`~ltc_pyg.graph.edge_probability.default_temperature`).
        threshold (float, optional): The similarity floor: links below
            this cosine similarity are never kept, whatever their NEP. Read
            from the graph when omitted, as Infomap's threshold is
            (:func:`~ltc_pyg.cluster.threshold.graph_threshold`, its
            ``'flow'`` rule); ``-1`` turns it off (the paper's method). It
            is the parameter threshold sweeps and ``--threshold`` set: a
            floor chosen on one split transfers to another of the same
            embedding, while no NEP threshold does between CFP and LFW
            (``benchmarks/README.md``). NEP is the mass two kNN rows put
            on shared neighbours: where most people have fewer photos than
            ``k`` (LFW), strangers in one dense region share as many
            neighbours as a person's photos do, and only the similarity
            tells them apart (on LFW the floor lifts ``fc-es`` from 0.64 to
            0.97 pairwise F; on synthetic it costs 0.2 points).
        nep_threshold (float): Early-stop threshold :math:`\theta` on NEP.
            (default: ``0.22``, the paper's)
        unlinked_singletons (bool): Nodes that keep no link are singletons
            even where Infomap puts them in a module, as in the paper's code
            (+1.5 points of pairwise F on LFW at the best NEP threshold).
        num_trials (int): Infomap trials; the partition with the shortest
            description is kept. Two, because one trial now and then codes
            a large identity as two modules, a longer description: on LFW
            one Infomap seed in ten (two in ten with the faces in random
            order) split its 530-photo identity, 0.84 instead of 0.97
            pairwise F; the best of two trials did not in ten seeds.
        coarsen_above (int): As in ``infomap``: with more kept links than
            this, Infomap walks groups of nodes.
    """
    temperature: float | None = None
    threshold: float | None = None
    nep_threshold: float = 0.22
    unlinked_singletons: bool = True
    num_trials: int = 2
    coarsen_above: int = COARSEN_ABOVE

    def __post_init__(self) -> None:
        if self.temperature is not None and not self.temperature > 0:
            raise ValueError(f'temperature must be positive (got '
                             f'{self.temperature})')
        if (self.threshold is not None
                and not -1.0 <= self.threshold <= 1.0):
            raise ValueError(f'threshold is a cosine similarity floor in '
                             f'[-1, 1] (got {self.threshold})')
        if not 0.0 <= self.nep_threshold <= 1.0:
            raise ValueError(f'nep_threshold is a NEP, a probability mass '
                             f'in [0, 1] (got {self.nep_threshold})')


class FCESMethod(ClusteringMethod):
    r"""NEP, early stop and directed Infomap (see the module docstring)."""
    name = 'fc-es'
    reads_features = False
    Params = FCESParams

    def __init__(self, params: Any = None, device: str = 'cpu', seed: int = 0,
                 progress_bar: bool | None = None) -> None:
        super().__init__(params, device, seed, progress_bar)
        # The NEP of the last graph, shared by copies of this method
        # (threshold sweeps re-cluster the same graph at other floors).
        self._nep_cache: dict[tuple[int, float], Tensor] = {}
        self._floor_cache: dict[int, float] = {}
        self.threshold_: float | None = None

    def similarity_floor(self, graph: Data) -> float:
        r"""``threshold``, or the graph's ``'flow'``
        :func:`~ltc_pyg.cluster.threshold.graph_threshold`."""
        if self.params.threshold is not None:
            return self.params.threshold
        key = graph.knn_neighbor.data_ptr()
        if key not in self._floor_cache:
            self._floor_cache.clear()
            self._floor_cache[key] = graph_threshold(
                graph.knn_neighbor, graph.knn_similarity, 'flow')
            logger.info("Chose fc-es's threshold %.4f from the kNN "
                        'similarity distribution', self._floor_cache[key])
        return self._floor_cache[key]

    def predict(self, graph: Data,
                timer: StageTimer | None = None) -> np.ndarray:
        timer = timer or StageTimer()
        params = self.params
        temperature = (params.temperature if params.temperature is not None
                       else default_temperature(graph.knn_similarity))
        key = (graph.knn_neighbor.data_ptr(), temperature)
        with timer('NEP'):
            if key not in self._nep_cache:
                self._nep_cache.clear()
                self._nep_cache[key] = neighbor_edge_probability(
                    graph.knn_neighbor, graph.knn_similarity, temperature)
            nep = self._nep_cache[key]
        with timer('similarity floor'):
            self.threshold_ = self.similarity_floor(graph)
        with timer('early stop + Infomap'):
            below = graph.knn_similarity < self.threshold_
            keep = early_stop(nep.masked_fill(below, -1.0),
                              params.nep_threshold)
            return _walk(graph.knn_neighbor, nep, keep, params.num_trials,
                         self.seed, params.unlinked_singletons,
                         params.coarsen_above)

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        if self.params.threshold is None and self.threshold_ is not None:
            described['threshold_used'] = self.threshold_
        return described


#: How ``learned-edges`` weighs a link for the walker.
LINK_WEIGHTS = ('log-odds', 'probability')


@dataclass(frozen=True)
class LearnedEdgesParams:
    r"""Parameters of ``learned-edges``.

    Args:
        features (tuple of str): Edge features the scorer reads, a subset
            of :data:`~ltc_pyg.graph.edge_probability.EDGE_FEATURES`.
        temperature (float, optional): NEP temperature; when omitted it is
            read from the training graph and stored with the model.
        hidden_channels (int): Context and hidden size of the scorer.
        context (bool): The scorer reads both ends' neighbourhoods
            (:class:`~ltc_pyg.nn.models.NeighborhoodContext`); without it,
            each edge is scored from its own features.
        threshold (float): Links are the edges whose same-identity
            probability is :math:`\geq` this.
        link_weight (str): What the walker follows a link by:
            ``'log-odds'`` :math:`\log(p / (1 - p))` (floored at
            :math:`10^{-3}`), the evidence the scorer has for the link, or
            ``'probability'`` :math:`p`. On both training splits (synthetic
            and CFP) the log-odds gave the better partition.
        merge_mass (float): Clusters are merged afterwards where the
            probability mass of the links between them reaches this many
            links' worth per node of the smaller cluster
            (:func:`~ltc_pyg.cluster.merge_linked_clusters`; one stray
            link weighs at most :math:`1`); ``0`` turns it off. The default
            was the best of 0, 2, 4 and 8 on the synthetic training split
            (``k = 80``).
        unlinked_singletons (bool): As in ``fc-es``.
        num_trials (int): Infomap trials.
        coarsen_above (int): As in ``fc-es``.
        inference_batch_size (int): Edges scored at once (in blocks of
            whole rows).
        fallback (bool): Also train a scorer of the similarity alone (no
            context, no merge), and cluster with it where the scorer does
            not transfer: where its agreement with the similarity falls
            more than :data:`AGREEMENT_DROP` below the training graph's
            (:func:`similarity_agreement`).
        train (TrainParams): The schedule; ``batch_size`` counts kNN rows
            (each with its ``k - 1`` edges) per step, drawn in epochs of
            the labelled rows.
    """
    features: tuple[str, ...] = EDGE_FEATURES
    temperature: float | None = None
    hidden_channels: int = 32
    context: bool = True
    threshold: float = 0.5
    link_weight: str = 'log-odds'
    merge_mass: float = 4.0
    unlinked_singletons: bool = True
    num_trials: int = 1
    coarsen_above: int = COARSEN_ABOVE
    inference_batch_size: int = 1_000_000
    fallback: bool = True
    train: TrainParams = field(default_factory=lambda: TrainParams(
        steps=400, epochs=None, optimizer='adam', lr=2e-3,
        milestones=(0.7,), batch_size=64))

    @property
    def similarity_only(self) -> bool:
        r"""Whether the scorer reads the similarity alone (the fallback's
        setting, which needs no fallback)."""
        return tuple(self.features) == ('similarity',) and not self.context

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 1:
            raise ValueError(f'threshold is a probability in (0, 1) (got '
                             f'{self.threshold})')
        if self.link_weight not in LINK_WEIGHTS:
            raise ValueError(f'link_weight must be one of {LINK_WEIGHTS} '
                             f'(got {self.link_weight!r})')
        if not self.merge_mass >= 0:
            raise ValueError(f'merge_mass must be >= 0 (got '
                             f'{self.merge_mass})')
        if self.hidden_channels < 1 or self.inference_batch_size < 1:
            raise ValueError('hidden_channels and inference_batch_size must '
                             'be positive')


def _row_edges(neighbor: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
    r"""The kNN edges into ``rows`` (column 0 left out): ``edge_index``
    ``[2, R (k-1)]`` in global ids and the flat ``[N * k]`` slot of each."""
    k = neighbor.size(1)
    slot = (rows.view(-1, 1) * k + torch.arange(1, k)).view(-1)
    target = rows.repeat_interleave(k - 1)
    return torch.stack([neighbor.view(-1)[slot].long(), target]), slot


#: How far the scorer's agreement with the cosine similarity
#: (:func:`similarity_agreement`) may fall below its value on the training
#: graph before ``learned-edges`` warns that it may not transfer. Measured:
#: a scorer trained on CFP with every feature fell from 0.52 (CFP) to 0.18
#: on LFW, where it clustered at 0.31 pairwise F; the synthetic scorer went
#: from 0.84 (train) to 0.84 (test) and 0.84 (100K).
AGREEMENT_DROP = 0.2


def similarity_agreement(probability: Tensor, similarity: Tensor,
                         num_samples: int = 200_000, seed: int = 0) -> float:
    r"""Spearman's rank correlation between edge probabilities and cosine
    similarities over the kNN slots (column 0, the node itself, left out;
    beyond ``num_samples`` slots, a seeded sample of that many): a
    label-free sign of whether a scorer reads a graph as it read its
    training graph.

    Shapes:
        - **input:** ``probability``, ``similarity`` :math:`(N, k)`
    """
    probability = probability[:, 1:].reshape(-1)
    similarity = similarity[:, 1:].reshape(-1)
    if probability.numel() > num_samples:
        picked = torch.from_numpy(np.random.default_rng(seed).integers(
            0, probability.numel(), num_samples))
        probability, similarity = probability[picked], similarity[picked]
    return float(spearmanr(probability.numpy(),
                           similarity.float().numpy()).statistic)


class LearnedEdgesMethod(LearnedMethod):
    r"""A learned edge scorer, then directed Infomap on the likely
    same-identity edges (see the module docstring)."""
    name = 'learned-edges'
    reads_features = False
    shards_inference = True
    label = 'Edge scorer'
    Params = LearnedEdgesParams
    state_attributes = ('temperature', 'similarity_agreement',
                        'fallback_state')

    def __init__(self, params: Any = None, device: str = 'cpu', seed: int = 0,
                 progress_bar: bool | None = None) -> None:
        super().__init__(params, device, seed, progress_bar)
        self.temperature: float | None = None
        #: :func:`similarity_agreement` on the training graph, and on the
        #: last graph clustered.
        self.similarity_agreement: float | None = None
        self.similarity_agreement_: float | None = None
        #: The state of the similarity-only scorer (``params.fallback``),
        #: and whether the last graph was clustered with it.
        self.fallback_state: dict[str, Any] | None = None
        self.used_fallback_ = False

    def fit(self, graph: Data, timer: StageTimer | None = None,
            save: Callable[[], None] | None = None) -> None:
        r"""Trains the scorer, records how its probabilities agree with
        the cosine similarity on the training graph, and trains the
        similarity-only fallback (``params.fallback``)."""
        timer = timer or StageTimer()
        super().fit(graph, timer, save)
        with timer('agreement with the similarity'):
            self.similarity_agreement = similarity_agreement(
                self.edge_probability(graph), graph.knn_similarity)
        if self.params.fallback and not self.params.similarity_only:
            fallback = self._fallback()
            fallback.fit(graph, timer)
            self.fallback_state = fallback.state_dict()

    def _fallback(self) -> LearnedEdgesMethod:
        r"""The similarity-only scorer: this method's parameters with
        ``features=('similarity',)``, no context, no fallback and no merge
        of linked clusters (the merge suits the full scorer's probabilities:
        with it the synthetic fallback chained, 0.28 pairwise F against
        0.87 without; on LFW 0.979 either way)."""
        params = dataclasses.replace(self.params, features=('similarity',),
                                     context=False, fallback=False,
                                     temperature=None, merge_mass=0.0)
        fallback = LearnedEdgesMethod(params, self.device, self.seed,
                                      self.progress_bar)
        if self.fallback_state is not None:
            fallback.load_state_dict(self.fallback_state)
        return fallback

    @property
    def threshold_name(self) -> None:
        r"""None: the threshold is a calibrated probability, not swept."""
        return None

    def build_model(self, in_channels: int) -> EdgeScorer:
        return EdgeScorer(in_channels, self.params.hidden_channels,
                          self.params.context)

    def edge_features(self, graph: Data) -> Tensor:
        r"""``[N, k, F]`` features of the graph's kNN slots."""
        if self.temperature is None:
            raise ValueError(f"'{self.name}' has no temperature yet; train "
                             f'it or give a checkpoint')
        return knn_edge_features(graph.knn_neighbor, graph.knn_similarity,
                                 self.temperature, self.params.features)

    def prepare_training(self, graph: Data, timer: StageTimer
                         ) -> TrainingPlan:
        train = self.params.train
        if self.temperature is None:
            self.temperature = (
                self.params.temperature if self.params.temperature is not None
                else default_temperature(graph.knn_similarity))
        with timer('edge features'):
            features = self.edge_features(graph)
        neighbor, labels = graph.knn_neighbor, graph.y
        num_nodes, k = neighbor.shape
        same = (labels[neighbor] == labels.view(-1, 1)).float()
        known = ((labels[neighbor] >= 0) & (labels.view(-1, 1) >= 0))
        rows_known = known[:, 1:].any(dim=1).nonzero().view(-1)
        if rows_known.numel() == 0:
            raise ValueError(f"'{self.name}' needs labelled training nodes")
        flat_features = features.view(num_nodes * k, -1)
        fresh = self.model is None
        model = self.build(features.size(2))
        if fresh:
            model.set_scaling(features[:, 1:].reshape(-1, features.size(2)))
        sampler = EpochSampler(rows_known.numel(), train.batch_size,
                               self.seed, train.samples_per_epoch)

        def loss_at(step: int) -> Tensor:
            rows = rows_known[sampler(step)]
            # The rows of the batch and of their neighbours, so that both
            # ends of every scored edge see their whole neighbourhood.
            nodes = torch.cat([rows, neighbor[rows, 1:].reshape(-1)]).unique()
            edge_index, slot = _row_edges(neighbor, nodes)
            scored = torch.isin(edge_index[1], rows)
            scored &= known.view(-1)[slot]
            logits = model(edge_index.to(self.device),
                           flat_features[slot].to(self.device), num_nodes,
                           scored.nonzero().view(-1).to(self.device))
            return F.binary_cross_entropy_with_logits(
                logits, same.view(-1)[slot[scored]].to(self.device))

        return TrainingPlan(sampler.steps_per_epoch, loss_at)

    @torch.no_grad()
    def edge_probability(self, graph: Data,
                         timer: StageTimer | None = None) -> Tensor:
        r"""Same-identity probability of every kNN slot, ``[N, k]`` (column
        0, the node itself, is :math:`1`); under ``torchrun`` each rank
        scores the edges into its range of rows and the ranks gather the
        rows."""
        timer = timer or StageTimer()
        model = self.trained_model(len(self.params.features))
        with timer('edge features'):
            features = self.edge_features(graph)
        neighbor = graph.knn_neighbor
        num_nodes, k = neighbor.shape
        flat = features.view(num_nodes * k, -1)
        # Blocks of rows of this rank's range (all rows in one process),
        # about inference_batch_size edges each: only a block's edges are
        # ever held as an edge list.
        part = node_range(num_nodes)
        rows_per_block = max(1, self.params.inference_batch_size // k)
        blocks = [torch.arange(start, min(start + rows_per_block, part.stop))
                  for start in range(part.start, part.stop, rows_per_block)]
        show = is_main_process() and (
            num_nodes > 100_000 if self.progress_bar is None
            else self.progress_bar)

        def block_edges(rows: Tensor) -> tuple[Tensor, Tensor]:
            edge_index, slot = _row_edges(neighbor, rows)
            return (edge_index.to(self.device),
                    model.scale(flat[slot].to(self.device)))

        with timer('edge scorer'):
            # A row's context comes from the edges into it: each block gives
            # its rows', the ranks gather every row's, then each block's
            # edges are scored with the contexts of both ends.
            context = None
            if model.context is not None:
                context = torch.empty(len(part), model.hidden_channels)
                for rows in blocks:
                    context[rows - part.start] = model.node_context(
                        *block_edges(rows), num_nodes)[rows].cpu()
                context = all_gather_rows(context).to(self.device)
            probability = torch.ones(len(part), k)
            for rows in tqdm(blocks, desc='Edge scorer', disable=not show):
                logits = model.score(*block_edges(rows), context)
                probability[rows - part.start, 1:] = torch.sigmoid(
                    logits).view(-1, k - 1).cpu()
        return all_gather_rows(probability)

    def predict(self, graph: Data,
                timer: StageTimer | None = None) -> np.ndarray:
        timer = timer or StageTimer()
        probability = self.edge_probability(graph, timer)
        self.used_fallback_ = (not self._transfers(probability,
                                                   graph.knn_similarity)
                               and self.fallback_state is not None)
        params, neighbor = self.params, graph.knn_neighbor
        if self.used_fallback_:  # its probabilities, links and merge
            fallback = self._fallback()
            probability = fallback.edge_probability(graph, timer)
            params = fallback.params
        keep = probability >= params.threshold
        keep[:, 0] = False
        weight = (probability if params.link_weight == 'probability'
                  else torch.logit(probability, eps=1e-6).clamp_(min=1e-3))
        with timer('Infomap'):  # on rank 0 under torchrun, as the merge
            labels = run_on_main(lambda: _walk(
                neighbor, weight, keep, params.num_trials, self.seed,
                params.unlinked_singletons, params.coarsen_above))
        if params.merge_mass > 0:
            with timer('merge'):
                labels = run_on_main(lambda: merge_linked_clusters(
                    labels, kept_links(neighbor, keep), probability[keep],
                    params.merge_mass))
        return labels

    def _transfers(self, probability: Tensor, similarity: Tensor) -> bool:
        r"""Whether the scorer agrees with the similarity on this graph
        about as well as on its training graph (within
        :data:`AGREEMENT_DROP`); warns when not."""
        self.similarity_agreement_ = similarity_agreement(probability,
                                                          similarity)
        trained = self.similarity_agreement
        if trained is None or (self.similarity_agreement_
                               >= trained - AGREEMENT_DROP):
            return True
        if is_main_process():
            logger.warning(
                "learned-edges: on this graph the edge probabilities agree "
                "with the cosine similarity far less than on the training "
                "graph (Spearman %.2f against %.2f), so the scorer may not "
                "transfer to this data (other identity sizes, another "
                "embedding); %s", self.similarity_agreement_, trained,
                'clustering with the similarity-only scorer instead'
                if self.fallback_state is not None else
                'check the clusters, or train with features: [similarity], '
                'context: false, which transfers across such shifts')
        return False

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        if self.similarity_agreement is not None:
            described['similarity_agreement_train'] = (
                self.similarity_agreement)
        if self.similarity_agreement_ is not None:
            described['similarity_agreement'] = self.similarity_agreement_
            described['used_fallback'] = self.used_fallback_
        return described

    def _upgrade_v1(self, state: dict[str, Any]) -> dict[str, Any]:
        # Version 1 did not store the scorer's input size: one per feature.
        return super()._upgrade_v1({**state,
                                    'in_channels': len(self.params.features)})
