r"""The pipeline API that the CLI, the examples and users' code call:

* :func:`build_graph`: features (+ labels, + a cached kNN file) -> the
  affinity-graph :class:`~torch_geometric.data.Data` every method takes;
* :func:`cluster`: graph -> labels and a report (metrics when labels are
  known, parameters, time and peak memory per stage);
* :func:`train`: graph with labels -> a trained method, saved as a
  checkpoint.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor
from torch_geometric.data import Data
from tqdm.auto import tqdm

from ltc_pyg.config import KNNConfig, to_dict
from ltc_pyg.data.io import KNN, read_knn
from ltc_pyg.data.validation import check_features, check_labels
from ltc_pyg.distributed import get_world_size, is_main_process, run_on_main
from ltc_pyg.graph.dataset import affinity_data
from ltc_pyg.graph.knn import cached_knn_search, l2_normalize
from ltc_pyg.graph.sharded_knn import sharded_knn_search
from ltc_pyg.metrics import evaluate_known
from ltc_pyg.pipelines.checkpoint import load_method, save_checkpoint
from ltc_pyg.pipelines.methods import ClusteringMethod, build_method
from ltc_pyg.pipelines.report import StageTimer

logger = logging.getLogger(__name__)


def build_graph(features: np.ndarray, knn: KNNConfig | None = None,
                labels: np.ndarray | None = None,
                knn_path: str | Path | None = None,
                cache_path: str | Path | None = None, device: str = 'cpu',
                timer: StageTimer | None = None,
                progress_bar: bool | None = None,
                keep_features: bool = True) -> Data:
    r"""Builds the affinity graph that every method takes.

    Args:
        features (np.ndarray): ``[N, D]`` features (normalised here).
        knn (KNNConfig, optional): How to search (default: exact, k=80).
        labels (np.ndarray, optional): ``[N]`` true labels, stored as ``y``.
        knn_path (str, optional): A kNN file in the original layout to use
            instead of searching; its rows are cut to ``knn.k`` when ``knn``
            is given (fewer neighbours fail), else used as they are.
        cache_path (str, optional): Where to cache the searched kNN (see
            :func:`~ltc_pyg.graph.knn.cached_knn_search`).
        device (str, optional): Device of the faiss search.
            Under ``torchrun`` the search is sharded over the ranks
            (:func:`~ltc_pyg.graph.sharded_knn.sharded_knn_search`).
        timer (StageTimer, optional): Records the stages.
        progress_bar (bool, optional): Show the kNN progress bar.
        keep_features (bool, optional): With :obj:`False` and a
            ``knn_path``, the features are neither checked nor read (only
            their row count is), and the graph has no ``x``: for methods
            that do not read it
            (:attr:`~ltc_pyg.pipelines.methods.ClusteringMethod.reads_features`).
            (default: :obj:`True`)

    Returns:
        Data: ``x`` ``[N, D]`` (unit rows), ``knn_neighbor`` /
        ``knn_similarity`` ``[N, k]``, and ``y`` ``[N]`` when labels are given.
    """
    timer = timer or StageTimer()
    keep_features = keep_features or knn_path is None  # the search reads them
    if keep_features:
        check_features(features)
    num_nodes = features.shape[0]
    if labels is not None:  # fail before the (long) kNN search
        check_labels(np.asarray(labels), num_nodes)
    x = None
    if keep_features:
        with timer('normalise features'):
            x = l2_normalize(features)
    search = knn or KNNConfig()
    if cache_path is not None and knn_path is None and get_world_size() > 1:
        raise ValueError(f'A kNN cache (--knn-cache {cache_path}) is not '
                         f'shared by the {get_world_size()} torchrun ranks; '
                         f"write the kNN once with 'torchrun ... ltc-pyg "
                         f"knn' and pass it as --knn")
    with timer('kNN'):
        if knn_path is not None:
            result = read_knn(knn_path, num_nodes=num_nodes)
            logger.info('Read kNN (k=%d) from %s', result.neighbor.shape[1],
                        knn_path)
            if knn is not None:
                result = _cut_knn(result, knn.k, knn_path)
        elif cache_path is not None:
            result = cached_knn_search(x, search.k, cache_path, search.method,
                                       device=device, normalize=False,
                                       progress_bar=progress_bar,
                                       **search.search_kwargs())
        else:
            result = sharded_knn_search(x, search.k, search.method,
                                        device=device, normalize=False,
                                        progress_bar=progress_bar,
                                        **search.search_kwargs())
    return affinity_data(x, result, labels)


def _cut_knn(knn: KNN, k: int, path: str | Path) -> KNN:
    r"""The first ``k`` entries of each row of a kNN file's lists."""
    available = knn.neighbor.shape[1]
    if available < k:
        raise ValueError(f'{path} has kNN rows of k={available}, fewer than '
                         f'the k={k} asked for')
    return KNN(knn.neighbor[:, :k], knn.similarity[:, :k])


@dataclass
class ClusterResult:
    r"""Labels ``[N]`` and the JSON-ready report of one clustering run."""
    labels: np.ndarray
    report: dict[str, Any]


def make_method(method: str, params: Any = None,
                checkpoint: str | Path | None = None, device: str = 'cpu',
                seed: int = 0, progress_bar: bool | None = None
                ) -> ClusteringMethod:
    r"""Builds a method, from a checkpoint when one is given (ours or the
    original project's)."""
    kwargs = dict(device=device, seed=seed, progress_bar=progress_bar)
    if checkpoint is not None:
        return load_method(checkpoint, method, params, **kwargs)[0]
    built = build_method(method, params, **kwargs)
    if built.trainable:
        raise ValueError(f"'{method}' is a learned method and needs "
                         f"--checkpoint (train one with 'ltc-pyg train "
                         f"{method}')")
    return built


#: The kNN settings that decide which graph a model sees. The search method
#: is not one of them: every method approximates the same exact kNN graph,
#: so a model trained on one runs on another's (e.g. an exact-graph model on
#: the ``blocked`` graph of a set too large for exact search).
GRAPH_KNN_FIELDS = ('k',)


def knn_settings(method: ClusteringMethod, requested: dict[str, Any],
                 base: KNNConfig | None = None) -> KNNConfig:
    r"""The kNN settings to build ``method``'s graph with: those it was
    trained on (:attr:`~ClusteringMethod.trained_knn`) when known, else
    ``base`` (default: :class:`~ltc_pyg.config.KNNConfig`), with the
    explicitly ``requested`` fields (e.g. ``{'k': 10}`` from ``--k``) on
    top.

    Raises:
        ValueError: When a requested ``k`` differs from the trained one:
            the model would run on a graph it never saw.
    """
    trained = method.trained_knn
    if trained is None:
        return dataclasses.replace(base or KNNConfig(), **requested)
    conflicts = [f'{name}={requested[name]!r}' for name in GRAPH_KNN_FIELDS
                 if name in requested and requested[name] != getattr(
                     trained, name)]
    if conflicts:
        raise ValueError(f"This '{method.name}' model was trained on a kNN "
                         f'graph with k={trained.k}, method='
                         f"'{trained.method}'; {', '.join(conflicts)} "
                         f'conflicts (leave it out to use the trained '
                         f'settings)')
    return dataclasses.replace(trained, **requested)


def _graph_for(graph: Data, method: ClusteringMethod) -> Data:
    r"""``graph`` with kNN rows cut to the ``k`` ``method`` was trained on
    (a longer exact row starts with the shorter one); shorter rows fail."""
    trained, k = method.trained_knn, graph.knn_neighbor.size(1)
    if trained is None or trained.k == k:
        return graph
    if k < trained.k:
        raise ValueError(f"This '{method.name}' model was trained with "
                         f'k={trained.k} but the graph has kNN rows of '
                         f'k={k}; build it with k={trained.k}')
    logger.info("Using the first %d of %d neighbours per row: the '%s' "
                'model was trained with k=%d', trained.k, k, method.name,
                trained.k)
    graph = graph.clone()
    graph.knn_neighbor = graph.knn_neighbor[:, :trained.k]
    graph.knn_similarity = graph.knn_similarity[:, :trained.k]
    return graph


def prediction_graph(graph: Data, method: ClusteringMethod) -> Data:
    r"""``graph`` as ``method`` predicts on it: kNN rows cut to the ``k``
    it was trained on, and no ``y`` (new attribute stores over the same
    tensors, no copy of the graph's data)."""
    unlabeled = copy.copy(_graph_for(graph, method))
    if 'y' in unlabeled:
        del unlabeled.y
    return unlabeled


def cluster(graph: Data, method: ClusteringMethod,
            timer: StageTimer | None = None,
            knn: KNNConfig | None = None) -> ClusterResult:
    r"""Runs ``method`` on ``graph`` and reports.

    Args:
        graph (Data): From :func:`build_graph`; ``y`` (if present) is used
            only for the metrics, never by the method. Its rows are cut to
            the ``k`` a learned method was trained on; shorter rows fail.
            Samples labelled ``-1`` (unknown) are left out of the metrics;
            the report counts them as ``num_unknown_labels``.
        method (ClusteringMethod): A built (and, if learned, trained) method.
        timer (StageTimer, optional): Holds earlier stages (reading, kNN) to
            include in the report.
        knn (KNNConfig, optional): Recorded in the report, as searched
            (:meth:`~ltc_pyg.config.KNNConfig.searched`).
    """
    method.check_ready()
    timer = timer or StageTimer()
    labels_true = graph.y.numpy() if 'y' in graph else None
    unlabeled = prediction_graph(graph, method)
    if method.shards_inference:
        labels = method.predict(unlabeled, timer)
    else:  # under torchrun: rank 0 alone, the labels broadcast
        labels = run_on_main(lambda: method.predict(unlabeled, timer))
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (graph.num_nodes,):
        raise RuntimeError(f"'{method.name}' returned {labels.shape} labels "
                           f'for {graph.num_nodes} nodes')
    metrics = num_unknown = None
    if labels_true is not None:
        with timer('evaluate'):
            metrics, num_unknown = evaluate_known(labels_true, labels)
    report = {'method': method.name, 'params': method.describe(),
              'knn': (to_dict(knn.searched(graph.num_nodes, get_world_size()))
                      if knn else None),
              'knn_k': int(unlabeled.knn_neighbor.size(1)),
              'num_nodes': int(graph.num_nodes),
              'num_clusters': int(np.unique(labels).size), 'metrics': metrics,
              'num_unknown_labels': num_unknown, **timer.as_dict()}
    return ClusterResult(labels, report)


def sweep_values(similarity: Tensor, num_values: int = 15,
                 include: float | None = None) -> np.ndarray:
    r"""Evenly spaced thresholds over the 2% to 98% quantiles of the
    similarities a method thresholds (finite values of any shape), a range
    that fits any embedding's scale; widened to
    :math:`\text{include} \pm 0.1` (capped at 0.999) when given, e.g. the
    method's current threshold."""
    values = similarity.double().reshape(-1).numpy()
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError('A threshold sweep needs similarities to sweep '
                         '(kNN lists with a neighbour, k >= 2)')
    low, high = np.quantile(values, [0.02, 0.98])
    if include is not None:
        low, high = min(low, include - 0.1), max(high, min(include + 0.1,
                                                           0.999))
    return np.unique(np.round(np.linspace(low, high, num_values), 4))


def threshold_sweep(graph: Data, method: ClusteringMethod,
                    values: np.ndarray | None = None,
                    num_values: int = 15,
                    progress_bar: bool | None = None
                    ) -> dict[str, Any] | None:
    r"""Clusters a labelled graph again at each value of the method's
    threshold parameter (its ``threshold_name``), reusing its kNN.

    Methods whose threshold acts after their model (those with
    ``predict_peaks``: GCN-V, GCN-V+E) run the model once and sweep the
    similarities of the links they threshold; the others cluster again at
    every value, over the similarity of each node to its nearest other
    node.

    Args:
        graph (Data): A graph with ``y``.
        method (ClusteringMethod): A built (trained) method; it is left
            unchanged.
        values (np.ndarray, optional): The thresholds. (default:
            :func:`sweep_values` of the thresholded similarities)
        num_values (int, optional): How many default values.
        progress_bar (bool, optional): Show a bar over the values; by
            default shown from 10K nodes (a sweep over LFW's 13K takes
            ~35 s).

    Returns:
        dict or None: ``{'param': name, 'values': [...], 'metrics': [...]}``
        (one metrics dict per value), or ``None`` when the method has no
        threshold parameter.
    """
    if 'y' not in graph:
        raise ValueError('A threshold sweep needs the true labels (graph.y)')
    name = method.threshold_name
    if name is None:
        return None
    peaks = None
    if hasattr(method, 'predict_peaks'):
        peaks = method.predict_peaks(prediction_graph(graph, method))
    if values is None:
        values = sweep_values(graph.knn_similarity[:, 1:2] if peaks is None
                              else peaks.similarity, num_values,
                              getattr(method.params, name))
    if progress_bar is None:
        progress_bar = graph.num_nodes >= 10_000
    metrics = []
    for value in tqdm(values, desc=f'{method.name} {name} sweep',
                      unit='value', disable=not progress_bar):
        variant = copy.copy(method)  # shares the trained model
        variant.params = dataclasses.replace(method.params,
                                             **{name: float(value)})
        if peaks is None:
            metrics.append(cluster(graph, variant).report['metrics'])
        else:
            metrics.append(evaluate_known(
                graph.y.numpy(), variant.labels_from_peaks(peaks))[0])
        logger.info('%s=%.4f: pairwise F %.4f', name, value,
                    metrics[-1]['pairwise_fscore'])
    return {'param': name, 'values': [float(v) for v in values],
            'metrics': metrics}


def best_threshold(sweep: dict[str, Any]) -> float:
    r"""The value of a :func:`threshold_sweep` with the best pairwise F
    (undefined scores count as worst; the first of equal ones)."""
    scores = [-1.0 if score is None or math.isnan(score) else score
              for score in (m['pairwise_fscore'] for m in sweep['metrics'])]
    return sweep['values'][int(np.argmax(scores))]


def _warn_degenerate_labels(labels: np.ndarray) -> None:
    r"""Warns when the known training labels (not ``-1``) cannot teach
    anything about clusters: one identity, or every identity a
    singleton."""
    known = labels[labels != -1]
    if known.size == 0:
        raise ValueError(f'All {labels.size} training labels are -1 '
                         f'(unknown); nothing to learn from')
    num_identities = np.unique(known).size
    if num_identities == 1:
        warnings.warn(f'All {known.size} labelled training samples have one '
                      f'identity; the model sees no pair of different '
                      f'identities to separate', stacklevel=3)
    elif num_identities == known.size:
        warnings.warn(f'All {known.size} labelled training samples are '
                      f'singletons (each identity once); the model sees no '
                      f'pair of one identity to link', stacklevel=3)


def train(graph: Data, method: str, params: Any = None,
          out: str | Path | None = None, knn: KNNConfig | None = None,
          device: str = 'cpu', seed: int = 0,
          resume: str | Path | None = None,
          progress_bar: bool | None = None,
          timer: StageTimer | None = None) -> ClusteringMethod:
    r"""Trains a learned method on a labelled graph and saves a checkpoint.

    Args:
        graph (Data): From :func:`build_graph`, with ``y``.
        method (str): A registered trainable method.
        params (optional): Its parameters (dataclass or dict).
        out (str, optional): Checkpoint to write.
        knn (KNNConfig, optional): Stored in the checkpoint.
        resume (str, optional): A checkpoint of ours to continue from.

    A method whose threshold parameter is left ``None`` gets the value with
    the best pairwise F on ``graph`` (:func:`threshold_sweep`) as its
    ``trained_threshold``, saved in the checkpoint: the threshold is read
    from the labelled training split, on the embedding's own scale.
    """
    if 'y' not in graph:
        raise ValueError(f"Training '{method}' needs labels")
    kwargs = dict(device=device, seed=seed, progress_bar=progress_bar)
    if resume is not None:
        built = load_method(resume, method, params, restore_rng=True,
                            **kwargs)[0]
    else:
        built = build_method(method, params, **kwargs)
    if not built.trainable:
        raise ValueError(f"'{method}' has nothing to train")
    _warn_degenerate_labels(graph.y.numpy())
    timer = timer or StageTimer()

    def save() -> None:
        if out is not None and is_main_process():
            save_checkpoint(out, built, built.trained_knn)
            logger.info('Saved %s checkpoint to %s', method, out)

    built.trained_knn = dataclasses.replace(
        knn or KNNConfig(), k=int(graph.knn_neighbor.size(1)))
    with timer('train'):
        built.fit(graph, timer, save)
    name = built.threshold_name
    if name is not None and getattr(built.params, name) is None:
        with timer('threshold on the training split'):
            sweep = threshold_sweep(graph, built, progress_bar=progress_bar)
            built.trained_threshold = best_threshold(sweep)
        logger.info("Chose %s's %s=%.4f on the training split", method,
                    name, built.trained_threshold)
    save()
    return built
