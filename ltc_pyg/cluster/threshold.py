r"""Choosing a similarity threshold from the data, for embeddings of any
scale (ArcFace-like features link at ~0.6, dlib descriptors at ~0.95)."""
from __future__ import annotations

import numpy as np
from torch import Tensor


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


def data_threshold(similarity: np.ndarray | Tensor) -> float:
    r"""The similarity threshold read from a kNN graph: Otsu's threshold
    (:func:`otsu_threshold`) of each node's similarity to its nearest other
    node (kNN column 1), the split between nodes with a close neighbour and
    isolated ones, on any embedding's scale.

    Args:
        similarity (np.ndarray or Tensor): ``[N, k]`` kNN similarities,
            each row starting with the node itself.
    """
    if similarity.shape[1] < 2:
        raise ValueError(f'Choosing a threshold from the data needs kNN '
                         f'lists with a neighbour (k >= 2, got '
                         f'k={similarity.shape[1]})')
    return otsu_threshold(np.asarray(similarity[:, 1]))
