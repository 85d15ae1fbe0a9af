r"""Choosing a similarity threshold from the data, for embeddings of any
scale (ArcFace-like features link at ~0.6, dlib descriptors at ~0.95)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from torch import Tensor

from ltc_pyg.cluster.map_equation import link_flow, partition_codelength
from ltc_pyg.graph.components import (
    connected_components,
    maximum_spanning_forest,
)
from ltc_pyg.graph.sparse import csr_from_rows


def otsu_threshold(similarity: np.ndarray, num_bins: int = 512) -> float:
    r"""Otsu's threshold of a 1-D similarity sample: the cut that maximises
    the between-class variance
    :math:`\omega_0 \omega_1 (\mu_0 - \mu_1)^2` of the histogram.

    kNN similarities mix a same-identity mode (high) and a
    different-identity mode (low); Otsu splits them without knowing the
    feature extractor's scale.

    Args:
        similarity (np.ndarray): Similarities (any shape).
        num_bins (int, optional): Histogram bins. (default: ``512``)
    """
    values = np.asarray(similarity, dtype=np.float64).reshape(-1)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError('Cannot choose a threshold from no similarities')
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-12:
        return high
    counts, edges = np.histogram(values, bins=num_bins, range=(low, high))
    centers = (edges[:-1] + edges[1:]) / 2
    weight0 = np.cumsum(counts)[:-1].astype(np.float64)
    weight1 = values.size - weight0
    sum0 = np.cumsum(counts * centers)[:-1]
    mean0 = sum0 / np.maximum(weight0, 1)
    mean1 = (np.sum(counts * centers) - sum0) / np.maximum(weight1, 1)
    between = weight0 * weight1 * (mean0 - mean1) ** 2
    return float(edges[1:-1][np.argmax(between)])


#: The bimodality coefficient of a uniform distribution; larger values
#: suggest two modes (Pfister et al., 2013).
BIMODAL = 5 / 9


def bimodality(values: np.ndarray) -> float:
    r"""The bimodality coefficient :math:`(\gamma^2 + 1) / \kappa` of a
    sample (skewness :math:`\gamma`, kurtosis :math:`\kappa`); above
    :data:`BIMODAL` the sample is likely bimodal."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    std = values.std()
    if std == 0:
        return 0.0
    z = (values - values.mean()) / std
    return float(((z ** 3).mean() ** 2 + 1) / (z ** 4).mean())


def _largest_component(forest: tuple[np.ndarray, np.ndarray],
                       num_nodes: int, threshold: float) -> int:
    r"""Size of the largest component of the kNN edges at similarity
    :math:`\geq` ``threshold``, read from their
    :func:`~ltc_pyg.graph.components.maximum_spanning_forest`."""
    edge_index, similarity = forest
    labels = connected_components(edge_index[:, similarity >= threshold],
                                  num_nodes)
    return int(np.bincount(labels).max())


#: Thresholds the bimodal ``'components'`` rule compares.
DESCRIPTION_GRID = 64


def _shortest_description(neighbor: Tensor, similarity: Tensor,
                          forest: tuple[np.ndarray, np.ndarray],
                          start: float) -> float:
    r"""The threshold :math:`t \geq t_0` = ``start`` whose connected
    components best describe a random walk on the kNN graph: the one of
    :data:`DESCRIPTION_GRID` values from :math:`t_0` to the 98% quantile of
    the nearest-neighbour similarities whose components have the shortest
    :func:`~ltc_pyg.cluster.map_equation.partition_codelength` on the
    undirected kNN links at similarity :math:`\geq t_0` (weighted by
    it). Components that chain strangers and components that split a
    person both lengthen the description."""
    neighbor, similarity = neighbor.numpy(), similarity.numpy()
    num_nodes = neighbor.shape[0]
    keep = (similarity >= start) & (similarity > 0) & (neighbor >= 0)
    keep &= neighbor != np.arange(num_nodes)[:, None]
    if not keep.any():
        return start
    adjacency = csr_from_rows(keep.sum(axis=1), neighbor[keep],
                              similarity[keep].astype(np.float64))
    flow, node_flow = link_flow(adjacency.maximum(adjacency.T).tocsr(),
                                directed=False)
    flow = flow.tocoo()  # once, not at every value of the grid
    edge_index, forest_similarity = forest
    grid = np.linspace(start, float(np.quantile(similarity[:, 1], 0.98)),
                       DESCRIPTION_GRID)
    lengths = [partition_codelength(flow, node_flow, connected_components(
        edge_index[:, forest_similarity >= value], num_nodes))
        for value in grid]
    return float(grid[int(np.argmin(lengths))])


def _bisect(low: float, high: float, too_low: Callable[[float], bool],
            steps: int = 14) -> float:
    r"""The point in ``[low, high]`` above which ``too_low`` fails (it must
    hold below some point and fail above it); ``low`` when it never
    holds."""
    for _ in range(steps):
        middle = (low + high) / 2
        if too_low(middle):
            low = middle
        else:
            high = middle
    return high


def graph_threshold(neighbor: Tensor, similarity: Tensor,
                    rule: Literal['components', 'flow'] = 'components',
                    growth: float = 1.25, fraction: float = 0.95) -> float:
    r"""A similarity threshold read from the kNN graph alone.

    Otsu's threshold :math:`t_0` of each node's similarity to its nearest
    other node splits nodes with a close neighbour from isolated ones when
    both kinds are common, i.e. when those similarities are bimodal
    (:func:`bimodality` above :data:`BIMODAL`; e.g. LFW, where most people
    have one photo). Then ``'flow'`` (Infomap, which splits communities
    itself) takes :math:`t_0`, while ``'components'`` (connected
    components and other linkage that chains) would chain single-photo
    people together there (LFW: 0.78 pairwise F at :math:`t_0`, 0.94 at
    the best threshold) and takes the threshold above :math:`t_0` whose
    components best describe a walk on the graph
    (:func:`_shortest_description`; 0.935 on LFW). When every node has a
    close same-identity neighbour the sample has one mode and :math:`t_0`
    cuts it in half (precision 1, recall ~0.4 on MS1M-like data). Then

    * ``'components'`` lowers the threshold as long as the largest
      component stays within ``growth`` times its size at :math:`t_0`,
      stopping before identities chain together;
    * ``'flow'`` lowers it to where the largest component first holds
      ``fraction`` of the nodes: the map equation, not the threshold, then
      separates the identities, and it needs most within-identity links
      kept to do so.

    Args:
        neighbor (Tensor): ``[N, k]`` kNN ids, the node itself first.
        similarity (Tensor): ``[N, k]`` similarities (``k >= 2``).
        rule (str, optional): ``'components'`` or ``'flow'``.
        growth (float, optional): Largest-component growth allowed by
            ``'components'``. (default: ``1.25``)
        fraction (float, optional): Share of nodes in the largest
            component for ``'flow'``; the default was the best of 0.5,
            0.7, 0.8, 0.9 and 0.95 for Infomap on two labelled training
            splits (MS1M-like, 150 and 250 identities). (default:
            ``0.95``)
    """
    if similarity.size(1) < 2:
        raise ValueError(f'Choosing a threshold from the data needs kNN '
                         f'lists with a neighbour (k >= 2, got '
                         f'k={similarity.size(1)})')
    if rule not in ('components', 'flow'):
        raise ValueError(f"Unknown rule '{rule}' (expected 'components' or "
                         f"'flow')")
    nearest = similarity[:, 1].numpy()
    start = otsu_threshold(nearest)
    bimodal = bimodality(nearest) > BIMODAL
    if bimodal and rule == 'flow':
        return start
    forest = maximum_spanning_forest(neighbor, similarity)
    if bimodal:
        return _shortest_description(neighbor, similarity, forest, start)
    low = float(similarity[:, 1:].min())
    num_nodes = neighbor.size(0)
    if rule == 'components':
        limit = growth * _largest_component(forest, num_nodes, start)
        return _bisect(low, start, lambda t: _largest_component(
            forest, num_nodes, t) > limit)
    size = fraction * num_nodes
    return _bisect(low, start, lambda t: _largest_component(
        forest, num_nodes, t) >= size)
