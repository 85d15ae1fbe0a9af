r"""A dataset that reads the original learn-to-cluster directory layout by
name and yields the affinity graph as a PyG :class:`Data`."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data, Dataset

from ltc_pyg.data.io import KNN, read_features, read_labels
from ltc_pyg.data.validation import check_labels
from ltc_pyg.graph.knn import KNNMethod, cached_knn_search, l2_normalize
from ltc_pyg.graph.transforms import AffinityData, knn_to_tensors


def affinity_data(x: np.ndarray | None, knn: KNN,
                  labels: np.ndarray | None = None) -> AffinityData:
    r"""Packs unit-norm features, dense kNN arrays and optional labels into
    the graph every method takes: ``AffinityData(x [N, D],
    knn_neighbor [N, k], knn_similarity [N, k], y [N])``. Edges are derived
    from the kNN arrays by
    :class:`~ltc_pyg.graph.transforms.KNNAffinityGraph` or by each method,
    as it needs them. With ``x=None`` the graph has no features, for the
    methods that cluster the kNN rows alone."""
    neighbor, similarity = knn_to_tensors(knn)
    num_nodes = neighbor.size(0)
    if x is not None and x.shape[0] != num_nodes:
        raise ValueError(f'{x.shape[0]} feature rows but {num_nodes} kNN '
                         f'rows')
    data = AffinityData(
        x=(None if x is None
           else torch.from_numpy(np.ascontiguousarray(x, np.float32))),
        knn_neighbor=neighbor, knn_similarity=similarity,
        num_nodes=num_nodes)
    if labels is not None:
        check_labels(np.asarray(labels), num_nodes)
        data.y = torch.tensor(np.asarray(labels), dtype=torch.long)
    return data


class FaceClusteringDataset(Dataset):
    r"""One embedding set stored in the original layout::

        root/features/<name>.bin           (or <name>.npy)
        root/labels/<name>.meta            (optional)
        root/knns/<name>/faiss_k_<k>.npz   (read if present, else built)

    ``dataset[0]`` is the affinity graph (see :func:`affinity_data`). A kNN
    file written by the original code is read as is; one written by
    ``ltc_pyg`` carries a fingerprint of the features and is rebuilt when
    the features, ``k`` or the method changed.

    Args:
        root (str): The data folder.
        name (str): The set's name, e.g. ``'part1_test'``.
        dim (int, optional): Feature dimension of a ``.bin`` file.
        k (int, optional): kNN row length, the node itself included.
            (default: ``80``)
        knn_method (str, optional): Search used when the kNN file is missing.
            (default: ``'flat'``)
        transform (callable, optional): PyG transform applied on access.
        **search_kwargs: Further :func:`~ltc_pyg.graph.knn.knn_search`
            arguments.
    """
    def __init__(self, root: str | Path, name: str, dim: int | None = None,
                 k: int = 80, knn_method: KNNMethod = 'flat',
                 transform: Callable[[Data], Data] | None = None,
                 **search_kwargs: Any) -> None:
        self.name = name
        self.dim = dim
        self.k = k
        self.knn_method = knn_method
        self.search_kwargs = search_kwargs
        self._graph: Data | None = None
        super().__init__(str(root), transform=transform)

    @property
    def features_path(self) -> Path:
        base = Path(self.root) / 'features'
        npy = base / f'{self.name}.npy'
        return npy if npy.is_file() else base / f'{self.name}.bin'

    @property
    def labels_path(self) -> Path:
        return Path(self.root) / 'labels' / f'{self.name}.meta'

    @property
    def knn_path(self) -> Path:
        return (Path(self.root) / 'knns' / self.name /
                f'faiss_k_{self.k}.npz')

    def len(self) -> int:
        return 1

    def get(self, idx: int) -> Data:
        if idx != 0:
            raise IndexError(f'{self.__class__.__name__} holds one graph '
                             f'(got index {idx})')
        if self._graph is None:
            self._graph = self._load()
        return self._graph.clone()

    def _load(self) -> Data:
        features = read_features(self.features_path, self.dim)
        labels = (read_labels(self.labels_path, features.shape[0])
                  if self.labels_path.is_file() else None)
        x = l2_normalize(features)
        knn = cached_knn_search(x, self.k, self.knn_path, self.knn_method,
                                normalize=False, **self.search_kwargs)
        return affinity_data(x, knn, labels)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}('{self.name}', k={self.k}, "
                f'knn_method={self.knn_method})')
