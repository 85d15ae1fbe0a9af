r"""A scikit-learn-like estimator over the pipeline API.

:class:`FaceClusterer` wraps :func:`~ltc_pyg.pipelines.run.build_graph`,
:func:`~ltc_pyg.pipelines.run.train`,
:func:`~ltc_pyg.pipelines.run.make_method` and
:func:`~ltc_pyg.pipelines.run.cluster` for users who think in
``fit`` / ``predict``::

    clusterer = FaceClusterer('gcn-v', knn=KNNConfig(k=80))
    clusterer.fit(train_features, train_labels)   # trains GCN-V
    labels = clusterer.predict(test_features)
    clusterer.report_['stages']                   # time and memory per stage

Every input may also be a graph built once with
:func:`~ltc_pyg.pipelines.run.build_graph` (its ``y`` holds the labels), so
that several methods share one kNN search.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
from torch_geometric.data import Data

from ltc_pyg.config import KNNConfig
from ltc_pyg.pipelines.checkpoint import save_checkpoint
from ltc_pyg.pipelines.methods import ClusteringMethod, get_method
from ltc_pyg.pipelines.report import StageTimer
from ltc_pyg.pipelines.run import build_graph, cluster, make_method, train

logger = logging.getLogger(__name__)

class FaceClusterer:
    r"""Clusters embeddings with any registered method, in the style of
    :class:`sklearn.cluster.KMeans`.

    Args:
        method (str, optional): A name from
            :data:`~ltc_pyg.pipelines.methods.METHODS`.
            (default: ``'knn-threshold'``)
        params (dataclass or dict, optional): The method's parameters (its
            ``Params``). (default: the method's defaults, or the stored ones
            of ``checkpoint``)
        knn (KNNConfig, optional): How the kNN graph of raw features is
            built. (default: ``KNNConfig()``, exact with k=80)
        checkpoint (str, optional): A trained model (ours or the original
            project's) to start from; learned methods need it or :meth:`fit`.
        device (str, optional): Torch and faiss device. (default: ``'cpu'``)
        seed (int, optional): Seed of every random choice. (default: ``0``)
        progress_bar (bool, optional): Show progress bars; by default shown
            for large inputs.

    Attributes:
        method_ (ClusteringMethod): The built (and trained) method.
        labels_ (np.ndarray): int64 ``[N]`` labels of the last
            :meth:`predict`.
        report_ (dict): Its report (metrics when labels were known,
            parameters, time and peak memory per stage).
        graph_ (Data): Its affinity graph, for reuse (e.g.
            :func:`threshold_sweep`).
    """
    def __init__(self, method: str = 'knn-threshold', params: Any = None,
                 knn: KNNConfig | None = None,
                 checkpoint: str | Path | None = None, device: str = 'cpu',
                 seed: int = 0, progress_bar: bool | None = None) -> None:
        get_method(method)  # unknown names fail here, not at fit time
        self.method = method
        self.params = params
        self.knn = knn or KNNConfig()
        self.checkpoint = checkpoint
        self.device = device
        self.seed = seed
        self.progress_bar = progress_bar

    @property
    def trainable(self) -> bool:
        r"""Whether the method learns from labelled data."""
        return get_method(self.method).trainable

    def _graph(self, features: np.ndarray | Data, labels: np.ndarray | None,
               knn_path: str | Path | None, timer: StageTimer) -> Data:
        if isinstance(features, Data):
            if labels is not None or knn_path is not None:
                raise ValueError('Pass labels and knn_path to build_graph, '
                                 'not with a prebuilt graph')
            return features
        return build_graph(features, self.knn, labels, knn_path=knn_path,
                           device=self.device, timer=timer,
                           progress_bar=self.progress_bar)

    def _built(self) -> ClusteringMethod:
        if not hasattr(self, 'method_'):
            self.method_ = make_method(
                self.method, self.params, checkpoint=self.checkpoint,
                device=self.device, seed=self.seed,
                progress_bar=self.progress_bar)
        return self.method_

    def fit(self, features: np.ndarray | Data,
            labels: np.ndarray | None = None,
            knn_path: str | Path | None = None) -> FaceClusterer:
        r"""Trains a learned method on labelled features (continuing from
        ``checkpoint`` when given); for other methods it only builds them.

        Args:
            features (np.ndarray or Data): ``[N, D]`` features, or a graph
                from :func:`~ltc_pyg.pipelines.run.build_graph`.
            labels (np.ndarray, optional): ``[N]`` identities (needed by
                learned methods unless the graph carries ``y``).
            knn_path (str, optional): A cached kNN file of ``features``.
        """
        if not self.trainable:
            self._built()
            return self
        timer = StageTimer()
        graph = self._graph(features, labels, knn_path, timer)
        if 'y' not in graph:
            raise ValueError(f"Training '{self.method}' needs labels for "
                             f'the {graph.num_nodes} samples')
        self.method_ = train(graph, self.method, self.params, knn=self.knn,
                             device=self.device, seed=self.seed,
                             resume=self.checkpoint,
                             progress_bar=self.progress_bar, timer=timer)
        self.train_report_ = timer.as_dict()
        return self

    def predict(self, features: np.ndarray | Data,
                labels: np.ndarray | None = None,
                knn_path: str | Path | None = None) -> np.ndarray:
        r"""Clusters ``features``; ``labels`` (never shown to the method)
        only add metrics to :attr:`report_`.

        Returns:
            np.ndarray: int64 ``[N]`` cluster labels.
        """
        method = self._built()
        timer = StageTimer()
        graph = self._graph(features, labels, knn_path, timer)
        result = cluster(graph, method, timer, self.knn)
        self.graph_ = graph
        self.labels_ = result.labels
        self.report_ = result.report
        return result.labels

    def fit_predict(self, features: np.ndarray | Data,
                    labels: np.ndarray | None = None,
                    knn_path: str | Path | None = None) -> np.ndarray:
        r""":meth:`fit` then :meth:`predict` on the same samples, with one
        kNN graph."""
        graph = self._graph(features, labels, knn_path, StageTimer())
        return self.fit(graph).predict(graph)

    def save(self, path: str | Path) -> None:
        r"""Writes a checkpoint of the trained method (learned methods)."""
        save_checkpoint(path, self._built(), self.knn)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(method={self.method!r}, '
                f'params={self.params!r}, knn={self.knn!r}, '
                f'device={self.device!r}, seed={self.seed})')


def default_sweep_values(graph: Data, num_values: int = 15,
                         include: float | None = None) -> np.ndarray:
    r"""Evenly spaced thresholds over the similarity of each node to its
    nearest other node (its 2% to 98% quantiles), a range that fits any
    embedding's scale; widened to :math:`\text{include} \pm 0.1` (capped
    at 0.999) when given, e.g. a method's current threshold that applies to
    other similarities (GCN-V's ``tau``)."""
    if graph.knn_similarity.size(1) < 2:
        raise ValueError('A threshold sweep needs kNN lists with at least '
                         'one neighbour (k >= 2)')
    nearest = graph.knn_similarity[:, 1].double().numpy()
    low, high = np.quantile(nearest, [0.02, 0.98])
    if include is not None:
        low, high = min(low, include - 0.1), max(high, min(include + 0.1,
                                                           0.999))
    return np.unique(np.round(np.linspace(low, high, num_values), 4))


def threshold_sweep(graph: Data, method: ClusteringMethod,
                    values: np.ndarray | None = None,
                    num_values: int = 15) -> dict[str, Any] | None:
    r"""Clusters a labelled graph again at each value of the method's
    threshold parameter (its ``threshold_name``), reusing its kNN.

    Args:
        graph (Data): A graph with ``y``.
        method (ClusteringMethod): A built (trained) method; it is left
            unchanged.
        values (np.ndarray, optional): The thresholds. (default:
            :func:`default_sweep_values`)
        num_values (int, optional): How many default values.

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
    if values is None:
        values = method.sweep_values(graph)
    if values is None:
        values = default_sweep_values(graph, num_values,
                                      getattr(method.params, name))
    metrics = []
    for value in values:
        variant = copy.copy(method)  # shares the trained model
        variant.params = dataclasses.replace(method.params,
                                             **{name: float(value)})
        metrics.append(cluster(graph, variant).report['metrics'])
        logger.info('%s=%.4f: pairwise F %.4f', name, value,
                    metrics[-1]['pairwise_fscore'])
    return {'param': name, 'values': [float(v) for v in values],
            'metrics': metrics}
