r"""Sparse routines that turn links and scores into cluster labels (plain
connected components live with the graph: :mod:`ltc_pyg.graph.components`)."""
from ltc_pyg.cluster.deoverlap import deoverlap, nms
from ltc_pyg.cluster.map_equation import (
    knn_map_equation_clusters,
    map_equation_clusters,
)
from ltc_pyg.cluster.merge import merge_linked_clusters, threshold_links
from ltc_pyg.cluster.peaks import (
    Peaks,
    confidence_to_peaks,
    peaks_to_edges,
    peaks_to_labels,
)
from ltc_pyg.cluster.threshold import otsu_threshold

__all__ = [
    'merge_linked_clusters', 'threshold_links', 'otsu_threshold', 'Peaks',
    'confidence_to_peaks', 'peaks_to_edges', 'peaks_to_labels', 'deoverlap',
    'nms', 'map_equation_clusters', 'knn_map_equation_clusters',
]
