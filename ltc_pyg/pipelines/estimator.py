r"""A scikit-learn estimator over the pipeline API.

:class:`FaceClusterer` wraps :func:`~ltc_pyg.pipelines.run.build_graph`,
:func:`~ltc_pyg.pipelines.run.train`,
:func:`~ltc_pyg.pipelines.run.make_method` and
:func:`~ltc_pyg.pipelines.run.cluster` as a
:class:`~sklearn.base.ClusterMixin` estimator, so that ``clone``,
``get_params`` / ``set_params``, ``Pipeline`` and ``GridSearchCV`` work::

    clusterer = FaceClusterer('gcn-v', knn={'k': 80})
    clusterer.fit(train_features, train_labels)   # trains GCN-V
    labels = clusterer.predict(test_features)
    clusterer.report_['stages']                   # time and memory per stage

``fit`` clusters its input (``labels_``; learned methods first train on the
labels), ``predict`` clusters new samples with the fitted method. Every
input may also be a graph built once with
:func:`~ltc_pyg.pipelines.run.build_graph` (its ``y`` holds the labels), so
that several methods share one kNN search.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import (
    check_is_fitted,
    column_or_1d,
    validate_data,
)
from torch_geometric.data import Data

from ltc_pyg.config import KNNConfig, from_dict, to_dict
from ltc_pyg.pipelines.checkpoint import save_checkpoint
from ltc_pyg.pipelines.methods import (
    check_device,
    get_method,
)
from ltc_pyg.pipelines.report import StageTimer
from ltc_pyg.pipelines.run import (
    build_graph,
    cluster,
    knn_settings,
    make_method,
    train,
)

logger = logging.getLogger(__name__)


class FaceClusterer(ClusterMixin, BaseEstimator):
    r"""Clusters embeddings with any registered method, as a scikit-learn
    clustering estimator.

    Parameters are only stored here and checked by :meth:`fit`, so that
    :func:`~sklearn.base.clone` and ``set_params`` work; a change takes
    effect at the next :meth:`fit`.

    Args:
        method (str, optional): A name from
            :data:`~ltc_pyg.pipelines.methods.METHODS`.
            (default: ``'knn-threshold'``)
        params (dataclass or dict, optional): The method's parameters (its
            ``Params``). (default: the method's defaults, or the stored ones
            of ``checkpoint``)
        knn (KNNConfig or dict, optional): How the kNN graph of raw features
            is built; ``k`` is capped at the number of samples. (default:
            the settings a ``checkpoint`` was trained with, else exact with
            ``k=80``; explicit ones that differ from a checkpoint's fail)
        checkpoint (str, optional): A trained model (ours or the original
            project's) to start from; learned methods need it or labels.
        device (str, optional): Torch and faiss device. (default: ``'cpu'``)
        seed (int, optional): Seed of every random choice. (default: ``0``)
        progress_bar (bool, optional): Show progress bars; by default shown
            for large inputs.

    Attributes:
        method_ (ClusteringMethod): The built (and trained) method.
        labels_ (np.ndarray): int64 ``[N]`` labels of the samples of
            :meth:`fit`.
        report_ (dict): Its report (metrics when labels were known,
            parameters, time and peak memory per stage, training included).
        graph_ (Data): Its affinity graph, for reuse (e.g.
            :func:`threshold_sweep`).
        knn_ (KNNConfig): The kNN settings used.
        n_features_in_ (int): Feature dimension seen by :meth:`fit`.
        train_report_ (dict): Time and memory of training (learned methods
            fitted with labels).
    """
    def __init__(self, method: str = 'knn-threshold', params: Any = None,
                 knn: KNNConfig | dict[str, Any] | None = None,
                 checkpoint: str | Path | None = None, device: str = 'cpu',
                 seed: int = 0, progress_bar: bool | None = None) -> None:
        self.method = method
        self.params = params
        self.knn = knn
        self.checkpoint = checkpoint
        self.device = device
        self.seed = seed
        self.progress_bar = progress_bar

    @property
    def trainable(self) -> bool:
        r"""Whether the method learns from labelled data."""
        return get_method(self.method).trainable

    def _requested_knn(self) -> dict[str, Any]:
        r"""The kNN settings the user set, checked."""
        if self.knn is None:
            return {}
        if isinstance(self.knn, KNNConfig):
            return to_dict(self.knn)
        if isinstance(self.knn, dict):
            from_dict(KNNConfig, self.knn, 'knn')
            return dict(self.knn)
        raise TypeError(f'knn must be a KNNConfig or a dict (got '
                        f'{type(self.knn).__name__})')

    def _graph(self, features: Any, labels: Any, knn_path: str | Path | None,
               timer: StageTimer, reset: bool) -> Data:
        r"""Checks the input and builds its graph with :attr:`knn_`."""
        if isinstance(features, Data):
            if labels is not None or knn_path is not None:
                raise ValueError('Pass labels and knn_path to build_graph, '
                                 'not with a prebuilt graph')
            num_features = int(features.x.size(1))
            if reset:
                self.n_features_in_ = num_features
            elif num_features != self.n_features_in_:
                raise ValueError(f'The graph has {num_features} features, '
                                 f'but {self.__class__.__name__} was fitted '
                                 f'on {self.n_features_in_}')
            return features
        features = validate_data(self, features, dtype=np.float32,
                                 reset=reset, ensure_min_samples=2)
        if labels is not None:
            labels = column_or_1d(labels)
            if not np.issubdtype(labels.dtype, np.integer):
                type_of_target(labels, 'y', raise_unknown=True)
                labels = np.unique(labels, return_inverse=True)[1]
        knn = self.knn_
        if knn.k > features.shape[0] and knn_path is None:
            knn = dataclasses.replace(knn, k=features.shape[0])
        return build_graph(features, knn, labels, knn_path=knn_path,
                           device=self.device, timer=timer,
                           progress_bar=self.progress_bar)

    def fit(self, X: Any, y: Any = None,
            knn_path: str | Path | None = None) -> FaceClusterer:
        r"""Clusters ``X`` into :attr:`labels_`. A learned method first
        trains on the labels (``y``, or the graph's ``y``), continuing from
        ``checkpoint`` when given; without labels it needs ``checkpoint``.
        Other methods use ``y`` only for the metrics in :attr:`report_`.

        Args:
            X (array-like or Data): ``[N, D]`` features, or a graph from
                :func:`~ltc_pyg.pipelines.run.build_graph`.
            y (array-like, optional): ``[N]`` identities: integers (``-1``
                unknown) or any labels, encoded as integers.
            knn_path (str, optional): A cached kNN file of ``X``.
        """
        method_class = get_method(self.method)
        check_device(self.device)
        requested = self._requested_knn()
        timer = StageTimer()
        labelled = y is not None or (isinstance(X, Data) and 'y' in X)
        if method_class.trainable and not labelled and self.checkpoint is None:
            raise ValueError(f"'{self.method}' is a learned method: fit it "
                             f'with labels (y) or give a checkpoint')
        if method_class.trainable and labelled:
            base = (make_method(self.method, self.params, self.checkpoint,
                                self.device, self.seed, self.progress_bar)
                    if self.checkpoint is not None else None)
            self.knn_ = (knn_settings(base, requested) if base is not None
                         else dataclasses.replace(KNNConfig(), **requested))
            graph = self._graph(X, y, knn_path, timer, reset=True)
            self.method_ = train(graph, self.method, self.params,
                                 knn=self.knn_, device=self.device,
                                 seed=self.seed, resume=self.checkpoint,
                                 progress_bar=self.progress_bar,
                                 timer=timer)
            self.knn_ = self.method_.trained_knn  # k as capped by the data
            self.train_report_ = timer.as_dict()
        else:
            self.method_ = make_method(self.method, self.params,
                                       self.checkpoint, self.device,
                                       self.seed, self.progress_bar)
            self.knn_ = knn_settings(self.method_, requested)
            graph = self._graph(X, y, knn_path, timer, reset=True)
        result = cluster(graph, self.method_, timer, self.knn_)
        self.graph_ = graph
        self.labels_ = result.labels
        self.report_ = result.report
        return self

    def predict(self, X: Any, knn_path: str | Path | None = None
                ) -> np.ndarray:
        r"""Clusters new samples with the fitted method (jointly, on their
        own kNN graph).

        Returns:
            np.ndarray: int64 ``[N]`` cluster labels.
        """
        check_is_fitted(self, 'method_')
        graph = self._graph(X, None, knn_path, StageTimer(), reset=False)
        return cluster(graph, self.method_).labels

    def fit_predict(self, X: Any, y: Any = None,
                    knn_path: str | Path | None = None) -> np.ndarray:
        r""":meth:`fit`, returning :attr:`labels_`."""
        return self.fit(X, y, knn_path).labels_

    def save(self, path: str | Path) -> None:
        r"""Writes a checkpoint of the trained method (learned methods)."""
        check_is_fitted(self, 'method_')
        save_checkpoint(path, self.method_, self.method_.trained_knn)
