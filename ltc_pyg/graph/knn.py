r"""Cosine kNN search with faiss: exact (flat), IVF and HNSW, CPU or GPU.
Exact search on a CUDA device without faiss-gpu runs in torch (chunked
matrix products and top-k), so a GPU helps even where faiss-gpu wheels do
not install.

Features are L2-normalised, so cosine similarity is the inner product. Each
result row starts with the node itself (similarity ~1), then its ``k - 1``
nearest other nodes in decreasing similarity: the convention of the original
``faiss_k_<k>.npz`` files, where ``k`` counts the node itself.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm.auto import tqdm

from ltc_pyg.data.io import KNN, read_knn, read_knn_metadata, write_knn
from ltc_pyg.data.validation import check_features, check_k

logger = logging.getLogger(__name__)

KNNMethod = Literal['flat', 'ivf', 'hnsw']
KNN_METHODS: tuple[str, ...] = ('flat', 'ivf', 'hnsw')

# Queries are searched in chunks of this many rows (progress, bounded memory).
DEFAULT_CHUNK_SIZE = 16384


def l2_normalize(x: np.ndarray) -> np.ndarray:
    r"""Returns a float32 copy of ``x`` with unit-norm rows,
    :math:`x_i / \lVert x_i \rVert_2`.

    Rows whose float32 norm is not finite or lies outside
    :math:`[10^{-15}, 10^{15}]` (where float32 squares under- or overflow:
    norms below ~1e-21 or above ~1e19 come out wrong) are normalised in
    float64, whose range holds the square of every float32; other rows keep
    the float32 result bit for bit.
    """
    x = np.array(x, dtype=np.float32, copy=True)
    norm = np.empty(x.shape[0], dtype=np.float32)
    with np.errstate(over='ignore', under='ignore'):
        for start in range(0, x.shape[0], 65536):  # no [N, D] temporary
            norm[start:start + 65536] = np.linalg.norm(
                x[start:start + 65536], axis=1)
    extreme = np.flatnonzero(~np.isfinite(norm) | (norm < 1e-15)
                             | (norm > 1e15))
    wide = x[extreme].astype(np.float64)
    np.divide(x, np.maximum(norm, np.finfo(np.float32).tiny)[:, None], out=x)
    wide_norm = np.linalg.norm(wide, axis=1, keepdims=True)
    x[extreme] = wide / np.maximum(wide_norm, np.finfo(np.float64).tiny)
    return x


def default_num_lists(num_nodes: int) -> int:
    r"""IVF list count :math:`\approx 4 \sqrt{N}`, capped so that each list
    gets at least ~39 training points (faiss' minimum)."""
    return max(1, min(int(4 * math.sqrt(num_nodes)), num_nodes // 39))


def _build_index(x: np.ndarray, method: str, device: str, num_lists: int | None,
                 num_probes: int, hnsw_m: int, ef_search: int,
                 ef_construction: int, seed: int):  # -> faiss.Index
    import faiss

    num_nodes, dim = x.shape
    if method == 'flat':
        index = faiss.IndexFlatIP(dim)
    elif method == 'ivf':
        num_lists = num_lists or default_num_lists(num_nodes)
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, num_lists,
                                   faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        # k-means on 64 points per list: faiss wants at least 39, and its
        # cost grows with the sample (all 584K points at 3,056 lists take
        # minutes on 2 cores, for no recall gained).
        rng = np.random.default_rng(seed)
        sample_size = min(num_nodes, 64 * num_lists)
        sample = x[np.sort(rng.choice(num_nodes, sample_size, replace=False))]
        logger.info('Training IVF with %d lists on %d points', num_lists,
                    sample_size)
        index.train(sample)
        index.nprobe = min(num_probes, num_lists)
    elif method == 'hnsw':
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
    else:
        raise ValueError(f"Unknown kNN method '{method}' (expected one of "
                         f'{KNN_METHODS})')
    if device.startswith('cuda'):
        if method == 'hnsw':
            raise ValueError("faiss has no GPU HNSW index; use method='flat' "
                             "or 'ivf' on CUDA")
        if not hasattr(faiss, 'StandardGpuResources'):
            raise ValueError(f"device='{device}' needs faiss-gpu "
                             f'(pip install ltc_pyg[gpu]); this faiss is '
                             f'CPU-only')
        gpu_id = int(device.split(':')[1]) if ':' in device else 0
        index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), gpu_id,
                                       index)
    return index


def check_search_params(**values: int | None) -> None:
    r"""Checks that the given faiss index sizes (``num_lists``,
    ``num_probes``, ``hnsw_m``, ``ef_search``, ...) are at least 1; ``None``
    means "the default" and passes."""
    for name, value in values.items():
        if value is not None and value < 1:
            raise ValueError(f"kNN search parameter '{name}' must be at least "
                             f'1 (got {value})')


def knn_search(x: np.ndarray, k: int, method: KNNMethod = 'flat',
               device: str = 'cpu', num_lists: int | None = None,
               num_probes: int = 64, hnsw_m: int = 32, ef_search: int = 256,
               ef_construction: int = 80, chunk_size: int = DEFAULT_CHUNK_SIZE,
               normalize: bool = True, seed: int = 0,
               progress_bar: bool | None = None) -> KNN:
    r"""Finds each node's ``k`` most cosine-similar nodes, itself first.

    Args:
        x (np.ndarray): Features ``[N, D]``.
        k (int): Row length, the node itself included (``k <= N``).
        method (str, optional): ``'flat'`` (exact), ``'ivf'`` (inverted lists,
            ``num_lists`` x ``num_probes``) or ``'hnsw'``. (default: ``'flat'``)
        device (str, optional): ``'cpu'`` or ``'cuda[:i]'`` (faiss-gpu;
            without it, ``'flat'`` runs in torch, see
            :func:`torch_exact_search`). (default: ``'cpu'``)
        num_lists (int, optional): IVF lists; :math:`4\sqrt{N}` if omitted.
        num_probes (int, optional): IVF lists visited per query.
            (default: ``64``)
        hnsw_m (int, optional): HNSW links per node. (default: ``32``)
        ef_search (int, optional): HNSW search breadth; raised to ``k`` when
            smaller; 256 gives recall@80 > 0.95 on MS1M-like data.
            (default: ``256``)
        ef_construction (int, optional): HNSW build breadth. (default: ``80``)
        chunk_size (int, optional): Queries per search call.
        normalize (bool, optional): L2-normalise ``x`` first.
            (default: :obj:`True`)
        seed (int, optional): Seed of the IVF training sample. (default: ``0``)
        progress_bar (bool, optional): Show a progress bar; by default shown
            for more than 50K nodes.

    Returns:
        KNN: ``neighbor`` int64 and ``similarity`` float32, both ``[N, k]``,
        sorted by decreasing similarity with the node itself in column 0.
    """
    check_features(x)
    num_nodes = x.shape[0]
    check_k(k, num_nodes)
    check_search_params(num_lists=num_lists, num_probes=num_probes,
                        hnsw_m=hnsw_m, ef_search=ef_search,
                        ef_construction=ef_construction)
    x = l2_normalize(x) if normalize else np.ascontiguousarray(x, np.float32)
    if progress_bar is None:
        progress_bar = num_nodes > 50_000
    if method == 'flat' and device.startswith('cuda') and not _faiss_gpu():
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"device='{device}' needs faiss-gpu or a CUDA "
                             f'build of torch with a GPU; this machine has '
                             f'neither')
        logger.info('faiss has no GPU support here: exact search in torch '
                    'on %s', device)
        return torch_exact_search(x, k, device, progress_bar=progress_bar)
    index = _build_index(x, method, device, num_lists, num_probes, hnsw_m,
                         max(ef_search, k), ef_construction, seed)
    logger.info('Adding %d x %d features to a %s index', num_nodes, x.shape[1],
                method)
    index.add(x)

    neighbor = np.empty((num_nodes, k), dtype=np.int64)
    similarity = np.empty((num_nodes, k), dtype=np.float32)
    for start in tqdm(range(0, num_nodes, chunk_size), desc='kNN search',
                      unit='chunk', disable=not progress_bar):
        stop = min(start + chunk_size, num_nodes)
        chunk_similarity, chunk_neighbor = index.search(x[start:stop], k)
        neighbor[start:stop], similarity[start:stop] = _put_self_first(
            chunk_neighbor, chunk_similarity, x[start:stop],
            np.arange(start, stop))
    return KNN(neighbor, similarity)


def _faiss_gpu() -> bool:
    import faiss

    return hasattr(faiss, 'StandardGpuResources')


def torch_exact_search(x: np.ndarray, k: int, device: str = 'cpu',
                       max_block_elements: int = 2**28,
                       progress_bar: bool = False) -> KNN:
    r"""Exact cosine kNN of L2-normalised ``x`` with torch on ``device``:
    blocks of query rows times all rows (:math:`\mathbf{X}_b
    \mathbf{X}^\top`), then top-``k``, itself moved first.

    Args:
        x (np.ndarray): ``[N, D]`` unit rows.
        k (int): Row length, the node itself included.
        device (str, optional): Torch device. (default: ``'cpu'``)
        max_block_elements (int, optional): Largest similarity block, in
            elements (``2**28``: 1 GiB of float32); the query block is
            ``max_block_elements // N`` rows.
        progress_bar (bool, optional): Show a progress bar.

    Returns:
        KNN: as :func:`knn_search`.
    """
    import torch

    num_nodes = x.shape[0]
    base = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(device)
    rows = max(1, min(num_nodes, max_block_elements // num_nodes))
    neighbor = np.empty((num_nodes, k), dtype=np.int64)
    similarity = np.empty((num_nodes, k), dtype=np.float32)
    for start in tqdm(range(0, num_nodes, rows), desc='kNN search',
                      unit='block', disable=not progress_bar):
        stop = min(start + rows, num_nodes)
        values, indices = (base[start:stop] @ base.T).topk(k, dim=1)
        neighbor[start:stop], similarity[start:stop] = _put_self_first(
            indices.cpu().numpy(), values.cpu().numpy(), x[start:stop],
            np.arange(start, stop))
    return KNN(neighbor, similarity)


def _put_self_first(neighbor: np.ndarray, similarity: np.ndarray,
                    x: np.ndarray, row_ids: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    r"""Moves each row's own id to column 0, vectorised.

    Where the search missed the node itself (duplicates, approximate search),
    the last neighbour is dropped to make room. Missing results (faiss' ``-1``
    when an approximate index finds fewer than ``k``) become the node itself
    with similarity ``-1``, so every id is valid and downstream code removes
    them with the self-loops.
    """
    is_self = neighbor == row_ids[:, None]
    has_self = is_self.any(axis=1)
    # Stable sort on "not self" brings the self column to the front.
    order = np.argsort(~is_self, axis=1, kind='stable')
    found = (np.take_along_axis(neighbor, order, axis=1),
             np.take_along_axis(similarity, order, axis=1))
    self_similarity = np.einsum('ij,ij->i', x, x)
    inserted = (np.concatenate([row_ids[:, None], neighbor[:, :-1]], axis=1),
                np.concatenate([self_similarity[:, None], similarity[:, :-1]],
                               axis=1))
    neighbor = np.where(has_self[:, None], found[0], inserted[0])
    similarity = np.where(has_self[:, None], found[1], inserted[1])
    # Self may have ranked below a duplicate; the row stays sorted after it.
    similarity[:, 0] = np.maximum(similarity[:, 0], similarity[:, 1:].max(
        axis=1, initial=-np.inf))
    missing = neighbor < 0
    if missing.any():
        warnings.warn(f'The index returned fewer than k results for '
                      f'{int(missing.any(axis=1).sum())} nodes; the gaps '
                      f'are filled with the node itself (similarity -1). '
                      f'Raise num_probes / ef_search', stacklevel=3)
        neighbor = np.where(missing, row_ids[:, None], neighbor)
        similarity = np.where(missing, np.float32(-1), similarity)
    return neighbor, similarity.astype(np.float32)


def fingerprint(x: np.ndarray) -> str:
    r"""A short hash of the shape and bytes of ``x``, stored in kNN caches so
    that a cache built for other features is never reused."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((tuple(x.shape), str(x.dtype))).encode())
    x = np.ascontiguousarray(x)
    for start in range(0, x.shape[0], 65536):
        digest.update(memoryview(np.ascontiguousarray(x[start:start + 65536])))
    return digest.hexdigest()


def cached_knn_search(x: np.ndarray, k: int, path: str | os.PathLike,
                      method: KNNMethod = 'flat', **kwargs) -> KNN:
    r"""Runs :func:`knn_search` once and caches the result in ``path`` (the
    original ``.npz`` layout plus a features fingerprint and the method).

    A cache is reused only when it was built from the same features (same
    fingerprint), the same ``k`` and the same ``method``; otherwise it is
    rebuilt and overwritten, with a warning saying why; so is a truncated or
    corrupt cache of ours. A file without metadata (written by the original
    code) is trusted when its shape matches, with a warning, and reported
    (not overwritten) when it does not read.

    Args:
        x (np.ndarray): Features ``[N, D]``.
        k (int): Row length, the node itself included.
        path (str): Cache file.
        method (str, optional): See :func:`knn_search`.
        **kwargs: Passed to :func:`knn_search`.
    """
    path = Path(path)
    metadata = knn_metadata(x, k, method)
    stored = None
    if path.is_file():
        try:
            stored = read_knn_metadata(path)
            if stored == {}:
                warnings.warn(f'{path} has no fingerprint (written by the '
                              f'original code?); reusing it as is',
                              stacklevel=2)
                return read_knn(path, num_nodes=x.shape[0], k=k)
            if stored == metadata:
                logger.info('Reusing the kNN cache %s', path)
                return read_knn(path, num_nodes=x.shape[0], k=k)
            reasons = [name for name, key in (
                ('features', 'fingerprint'), ('method', 'method'), ('k', 'k'))
                if stored.get(key) != metadata[key]]
            warnings.warn(f'{path} was built for other {", ".join(reasons)}; '
                          f'rebuilding it', stacklevel=2)
        except ValueError as error:
            if stored == {}:  # not ours: report, do not overwrite
                raise
            warnings.warn(f'The kNN cache is unusable ({error}); rebuilding '
                          f'it', stacklevel=2)
    knn = knn_search(x, k, method=method, **kwargs)
    write_knn(path, knn, **metadata)
    return knn


def knn_metadata(x: np.ndarray, k: int, method: str) -> dict[str, str]:
    r"""The metadata that identifies a kNN file as built from ``x``
    (L2-normalised, as searched) with ``k`` and ``method``: stored by
    :func:`cached_knn_search` and ``ltc-pyg knn``, so that either's file is
    recognised as a cache."""
    return {'fingerprint': fingerprint(x), 'method': method, 'k': str(k)}


def knn_recall(approximate: KNN, exact: KNN) -> float:
    r"""Recall@k of an approximate kNN against the exact one: the mean
    fraction of each exact row (itself excluded) found in the approximate
    row."""
    approx_ids, exact_ids = approximate.neighbor[:, 1:], exact.neighbor[:, 1:]
    if exact_ids.shape[1] == 0:
        return 1.0
    rows = np.arange(exact_ids.shape[0])[:, None]
    width = exact_ids.max() + 1
    found = np.isin(exact_ids + rows * width, approx_ids + rows * width)
    return float(found.mean())
