r"""kNN search with the base split over the ranks of a
:mod:`torch.distributed` group (:mod:`ltc_pyg.distributed`).

Rank :math:`r` of :math:`R` indexes the base rows
:math:`[\lfloor rN/R \rfloor, \lfloor (r+1)N/R \rfloor)` and searches every
query against them; per chunk of queries, the ranks exchange their ``k``
best candidates (``R x chunk x k`` ids and similarities) and each keeps the
``k`` most similar of the ``R k``. For exact (``'flat'``) search the
global top-``k`` is among the union of the shards' top-``k``, so the result
equals the single-process search (ties, equal similarities, ordered by id
within a shard and by shard across them). IVF and HNSW search each shard
approximately; their recall per shard is that of a smaller index.

Without a group (or with one rank) this is :func:`~ltc_pyg.graph.knn.
knn_search` itself.
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ltc_pyg.data.io import KNN
from ltc_pyg.data.validation import check_features, check_k
from ltc_pyg.distributed import (
    all_gather_stacked,
    get_rank,
    get_world_size,
    node_range,
)
from ltc_pyg.graph.knn import (
    DEFAULT_CHUNK_SIZE,
    KNNMethod,
    _build_index,
    _put_self_first,
    check_search_params,
    default_num_probes,
    knn_search,
    l2_normalize,
    resolve_knn_method,
)

#: The faiss searches that run on a shard of the base.
SHARDED_METHODS = ('flat', 'ivf', 'hnsw')


def merge_candidates(neighbor: np.ndarray, similarity: np.ndarray, k: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    r"""The ``k`` most similar of each query's candidates from all shards.

    Args:
        neighbor (np.ndarray): ``[R, C, k_s]`` global ids (``-1``: none).
        similarity (np.ndarray): ``[R, C, k_s]`` similarities.
        k (int): Candidates kept per query.

    Returns:
        (np.ndarray, np.ndarray): ``[C, k]`` ids and similarities, by
        decreasing similarity; equal similarities keep shard order.
    """
    num_shards, num_queries, width = neighbor.shape
    neighbor = neighbor.transpose(1, 0, 2).reshape(num_queries, -1)
    similarity = similarity.transpose(1, 0, 2).reshape(num_queries, -1)
    # Missing results (id -1) sort last.
    key = np.where(neighbor < 0, -np.inf, similarity)
    order = np.argsort(-key, axis=1, kind='stable')[:, :k]
    return (np.take_along_axis(neighbor, order, axis=1),
            np.take_along_axis(similarity, order, axis=1))


def sharded_knn_search(x: np.ndarray, k: int, method: KNNMethod = 'flat',
                       device: str = 'cpu', num_lists: int | None = None,
                       num_probes: int | None = None, hnsw_m: int = 32,
                       ef_search: int = 256, ef_construction: int = 80,
                       chunk_size: int = DEFAULT_CHUNK_SIZE,
                       normalize: bool = True, seed: int = 0,
                       progress_bar: bool | None = None) -> KNN:
    r"""Finds each node's ``k`` most cosine-similar nodes, itself first, with
    the base sharded over the process group (see the module docstring).

    Every rank passes the same ``x`` and gets the whole result. The
    arguments are those of :func:`~ltc_pyg.graph.knn.knn_search`; an IVF
    shard gets ``num_lists`` (default :math:`4\sqrt{N_r}`) lists of its
    own. Over several ranks ``'auto'`` is exact search (``'flat'``): the
    blocked search is not sharded.

    Returns:
        KNN: ``neighbor`` int64 and ``similarity`` float32, ``[N, k]``.
    """
    world_size = get_world_size()
    index_sizes = dict(num_lists=num_lists, num_probes=num_probes,
                       hnsw_m=hnsw_m, ef_search=ef_search,
                       ef_construction=ef_construction)
    if world_size == 1:
        return knn_search(x, k, method, device=device, chunk_size=chunk_size,
                          normalize=normalize, seed=seed,
                          progress_bar=progress_bar, **index_sizes)
    method = resolve_knn_method(method, x.shape[0], world_size)
    if method not in SHARDED_METHODS:
        raise ValueError(f"kNN method '{method}' is not sharded over "
                         f'torchrun ranks; use one of {SHARDED_METHODS} '
                         f'(or run it in one process)')
    check_features(x)
    check_k(k, x.shape[0])
    check_search_params(**index_sizes)
    num_probes = default_num_probes(method, num_probes)
    num_nodes = x.shape[0]
    if num_nodes < world_size:
        raise ValueError(f'{num_nodes} nodes cannot be split over '
                         f'{world_size} ranks')
    x = l2_normalize(x) if normalize else np.ascontiguousarray(x, np.float32)
    shard = node_range(num_nodes)
    shard_k = min(k, len(shard))
    index = _build_index(x[shard.start:shard.stop], method, device,
                         num_lists, num_probes, hnsw_m, max(ef_search, k),
                         ef_construction, seed)
    index.add(x[shard.start:shard.stop])
    if progress_bar is None:
        progress_bar = num_nodes > 50_000
    neighbor = np.empty((num_nodes, k), dtype=np.int64)
    similarity = np.empty((num_nodes, k), dtype=np.float32)
    for start in tqdm(range(0, num_nodes, chunk_size), desc='kNN search',
                      unit='chunk', disable=not progress_bar or get_rank()):
        stop = min(start + chunk_size, num_nodes)
        found_similarity = np.full((stop - start, k), -np.inf, np.float32)
        found_neighbor = np.full((stop - start, k), -1, np.int64)
        found_similarity[:, :shard_k], ids = index.search(x[start:stop],
                                                          shard_k)
        found_neighbor[:, :shard_k] = np.where(ids < 0, -1, ids + shard.start)
        chunk_neighbor, chunk_similarity = merge_candidates(
            all_gather_stacked(torch.from_numpy(found_neighbor)).numpy(),
            all_gather_stacked(torch.from_numpy(found_similarity)).numpy(),
            k)
        neighbor[start:stop], similarity[start:stop] = _put_self_first(
            chunk_neighbor, chunk_similarity, x[start:stop],
            np.arange(start, stop))
    return KNN(neighbor, similarity)
