r"""Sparse routines that turn links and scores into cluster labels."""
from ltc_pyg.cluster.deoverlap import deoverlap, nms
from ltc_pyg.cluster.dynamic_threshold import (
    dynamic_threshold_components,
    pool_pair_scores,
)
from ltc_pyg.cluster.map_equation import map_equation_clusters
from ltc_pyg.cluster.merge import (
    connected_components,
    merge_linked_clusters,
    relabel_by_first_appearance,
    threshold_links,
)
from ltc_pyg.cluster.peaks import (
    Peaks,
    confidence_to_peaks,
    peaks_to_edges,
    peaks_to_labels,
)
from ltc_pyg.cluster.threshold import otsu_threshold

__all__ = [
    'connected_components', 'merge_linked_clusters',
    'relabel_by_first_appearance', 'threshold_links',
    'otsu_threshold', 'dynamic_threshold_components', 'pool_pair_scores',
    'Peaks', 'confidence_to_peaks', 'peaks_to_edges', 'peaks_to_labels',
    'deoverlap', 'nms', 'map_equation_clusters',
]
