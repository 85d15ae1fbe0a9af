r"""k-means, mini-batch k-means, spectral clustering and mean-shift through
scikit-learn, on the features or on the sparse kNN affinity graph."""
from __future__ import annotations

import logging
from typing import Literal

import numpy as np
from sklearn.cluster import (
    KMeans,
    MeanShift,
    MiniBatchKMeans,
    SpectralClustering,
)
from torch import Tensor

from ltc_pyg.baselines.knn_graph import knn_matrix

logger = logging.getLogger(__name__)


def _check_num_clusters(n_clusters: int, num_nodes: int) -> None:
    if not 1 <= n_clusters <= num_nodes:
        raise ValueError(f'n_clusters must be in [1, {num_nodes}] for '
                         f'{num_nodes} samples (got {n_clusters})')


def kmeans(x: np.ndarray, n_clusters: int, batch_size: int | None = None,
           max_iter: int = 100, seed: int = 0) -> np.ndarray:
    r"""k-means of the features (`Lloyd, 1982
    <https://doi.org/10.1109/TIT.1982.1056489>`_), or mini-batch k-means
    (`Sculley, 2010 <https://doi.org/10.1145/1772690.1772862>`_) when
    ``batch_size`` is given.

    Args:
        x (np.ndarray): ``[N, D]`` features.
        n_clusters (int): Number of clusters.
        batch_size (int, optional): Mini-batch size; full k-means when
            omitted.
        max_iter (int, optional): Iterations (epochs for mini-batches).
            (default: ``100``)
        seed (int, optional): Seed of the initialisation and the batches.

    Returns:
        np.ndarray: int64 ``[N]`` labels.
    """
    _check_num_clusters(n_clusters, x.shape[0])
    if batch_size is None:
        model = KMeans(n_clusters, n_init=1, max_iter=max_iter,
                       random_state=seed)
    else:
        if batch_size < 1:
            raise ValueError(f'batch_size must be at least 1 (got '
                             f'{batch_size})')
        model = MiniBatchKMeans(n_clusters, batch_size=batch_size, n_init=1,
                                max_iter=max_iter, random_state=seed)
    logger.info('%s with %d clusters on %d x %d features',
                type(model).__name__, n_clusters, *x.shape)
    return model.fit_predict(x).astype(np.int64)


def spectral(neighbor: Tensor, similarity: Tensor, n_clusters: int,
             n_components: int | None = 100, min_similarity: float = 0.0,
             assign_labels: Literal['kmeans', 'cluster_qr',
                                    'discretize'] = 'kmeans',
             seed: int = 0) -> np.ndarray:
    r"""Spectral clustering (`Shi and Malik, 2000
    <https://doi.org/10.1109/34.868688>`_) of the sparse, symmetrised kNN
    affinity :math:`\max(\mathbf{A}, \mathbf{A}^\top)`; no dense
    :math:`N \times N` matrix is built. The eigenvectors come from LOBPCG:
    scikit-learn's default ARPACK shift-invert factorises the Laplacian,
    whose fill-in on a kNN graph made it 7x slower at 10K nodes and stall
    at 62K.

    Args:
        neighbor (Tensor): ``[N, k]`` neighbour ids (itself first).
        similarity (Tensor): ``[N, k]`` cosine similarities.
        n_clusters (int): Number of clusters.
        n_components (int, optional): Eigenvectors of the embedding, at
            most ``n_clusters`` (as in Dask-ML's spectral clustering, whose
            default this is); ``n_clusters`` when :obj:`None`. Only
            ``'kmeans'`` can assign more clusters than components.
            (default: ``100``)
        min_similarity (float, optional): Affinities below this are dropped;
            affinities must be non-negative. (default: ``0.0``)
        assign_labels (str, optional): How the embedding becomes labels
            (scikit-learn's option). (default: ``'kmeans'``)
        seed (int, optional): Seed of the eigensolver start and k-means.

    Returns:
        np.ndarray: int64 ``[N]`` labels.
    """
    num_nodes = neighbor.size(0)
    _check_num_clusters(n_clusters, num_nodes)
    if min_similarity < 0:
        raise ValueError(f'Spectral affinities must be non-negative, so '
                         f'min_similarity must be >= 0 (got '
                         f'{min_similarity})')
    n_components = min(n_clusters, n_components or n_clusters)
    if assign_labels != 'kmeans' and n_components < n_clusters:
        raise ValueError(f"assign_labels='{assign_labels}' needs one "
                         f'eigenvector per cluster ({n_clusters}) but '
                         f'n_components is {n_components}')
    affinity = knn_matrix(neighbor, similarity, min_similarity,
                          symmetric=True)
    logger.info('Spectral clustering: %d clusters from %d eigenvectors of '
                '%d affinities', n_clusters, n_components, affinity.nnz)
    model = SpectralClustering(n_clusters, n_components=n_components,
                               affinity='precomputed', eigen_solver='lobpcg',
                               assign_labels=assign_labels,
                               random_state=seed)
    return model.fit_predict(affinity).astype(np.int64)


def mean_shift(x: np.ndarray, bandwidth: float,
               num_seeds: int | None = 1000, seed: int = 0) -> np.ndarray:
    r"""Mean-shift (`Comaniciu and Meer, 2002
    <https://doi.org/10.1109/34.1000236>`_) of the features with a flat
    kernel, every sample assigned to its nearest mode.

    Args:
        x (np.ndarray): ``[N, D]`` features.
        bandwidth (float): Euclidean kernel radius.
        num_seeds (int, optional): Start the shifts from this many random
            samples instead of from every sample (each shift scans all
            :math:`N` samples); at most this many clusters are found.
            :obj:`None` starts from every sample. (default: ``1000``)
        seed (int, optional): Seed of the seed samples.

    Returns:
        np.ndarray: int64 ``[N]`` labels.
    """
    if bandwidth <= 0:
        raise ValueError(f'bandwidth must be positive (got {bandwidth})')
    num_nodes = x.shape[0]
    seeds = None
    if num_seeds is not None and num_seeds < num_nodes:
        rng = np.random.default_rng(seed)
        seeds = x[np.sort(rng.choice(num_nodes, num_seeds, replace=False))]
    logger.info('Mean-shift with bandwidth %.4f from %s seeds', bandwidth,
                num_nodes if seeds is None else num_seeds)
    model = MeanShift(bandwidth=bandwidth, seeds=seeds, cluster_all=True)
    return model.fit_predict(x).astype(np.int64)
