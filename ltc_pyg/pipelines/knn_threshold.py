r"""The ``knn-threshold`` method: keep kNN edges above a similarity threshold
and take connected components (the CDP / "kNN + threshold" baseline)."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from torch_geometric.data import Data

from ltc_pyg.cluster.threshold import graph_threshold
from ltc_pyg.graph.components import connected_components
from ltc_pyg.graph.transforms import knn_to_edges
from ltc_pyg.pipelines.methods import ClusteringMethod
from ltc_pyg.pipelines.report import StageTimer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KNNThresholdParams:
    r"""Args:
        threshold (float, optional): Keep edges with cosine similarity
            :math:`\geq` this. When omitted it is read from the kNN graph
            (:func:`~ltc_pyg.cluster.threshold.graph_threshold`, its
            ``'components'`` rule), on any embedding's scale; the gap to a
            threshold chosen on labelled data is in
            ``benchmarks/README.md``: a safe start, not a tuned value.
    """
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.threshold is not None and not -1.0 <= self.threshold <= 1.0:
            raise ValueError(f'threshold must be a cosine similarity in '
                             f'[-1, 1] (got {self.threshold})')


class KNNThreshold(ClusteringMethod):
    r"""Connected components of the kNN graph cut at a similarity threshold."""
    name = 'knn-threshold'
    reads_features = False
    Params = KNNThresholdParams

    def predict(self, graph: Data,
                timer: StageTimer | None = None) -> np.ndarray:
        timer = timer or StageTimer()
        with timer('threshold + components'):
            threshold = self.params.threshold
            if threshold is None:
                threshold = graph_threshold(graph.knn_neighbor,
                                            graph.knn_similarity)
                logger.info('Chose threshold %.4f from the kNN similarity '
                            'distribution', threshold)
            self.threshold_ = float(threshold)
            # Only the kept edges are built, after the threshold search: at
            # 1.74M nodes all N k edges with their weights took 2.7 GB.
            edge_index, _ = knn_to_edges(graph.knn_neighbor,
                                         graph.knn_similarity, threshold)
            return connected_components(edge_index, graph.num_nodes)

    def describe(self) -> dict:
        described = super().describe()
        if getattr(self, 'threshold_', None) is not None:
            described['threshold_used'] = self.threshold_
        return described
