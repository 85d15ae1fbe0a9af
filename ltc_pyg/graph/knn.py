r"""Cosine kNN search: exact (flat), IVF and HNSW with faiss, and a blocked
kNN-graph search in torch (:func:`blocked_search`), CPU or GPU. Exact search
on a CUDA device without faiss-gpu runs in torch (chunked matrix products and
top-k), so a GPU helps even where faiss-gpu wheels do not install.

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
from typing import TYPE_CHECKING, Literal

import numpy as np
from tqdm.auto import tqdm

from ltc_pyg.data.io import KNN, read_knn, read_knn_metadata, write_knn
from ltc_pyg.data.validation import check_features, check_k

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

KNNMethod = Literal['auto', 'flat', 'ivf', 'hnsw', 'blocked']
KNN_METHODS: tuple[str, ...] = ('auto', 'flat', 'ivf', 'hnsw', 'blocked')

# 'auto' is exact up to this many nodes and the blocked search above, where
# the blocked search (128 probes, recall@80 ~0.94-0.95) is over 2x faster
# than exact search on 2 CPU cores: 1.3x at 100K, 2.8x at 250K
# (benchmarks/README.md, kNN search).
AUTO_EXACT_MAX_NODES = 200_000
# Lists probed per node when ``num_probes`` is not given: 128 is where the
# blocked search reaches recall@80 0.95 at 584K.
DEFAULT_NUM_PROBES = {'ivf': 64, 'blocked': 128}

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
        block = 65536  # rows at a time: no [N, D] temporary
        for start in range(0, x.shape[0], block):
            norm[start:start + block] = np.linalg.norm(
                x[start:start + block], axis=1)
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


def resolve_knn_method(method: str, num_nodes: int,
                       num_processes: int = 1) -> str:
    r"""The search that ``method`` means for ``num_nodes`` nodes:
    ``'auto'`` is ``'flat'`` (exact) up to :data:`AUTO_EXACT_MAX_NODES`
    nodes and ``'blocked'`` above, and ``'flat'`` when sharded over
    ``num_processes > 1`` (the blocked search is not sharded); any other
    method is itself."""
    if method != 'auto':
        return method
    exact = num_nodes <= AUTO_EXACT_MAX_NODES or num_processes > 1
    return 'flat' if exact else 'blocked'


def default_num_probes(method: str, num_probes: int | None) -> int | None:
    r"""``num_probes``, or ``method``'s :data:`DEFAULT_NUM_PROBES` when it
    is ``None`` (still ``None`` for a method without probes)."""
    return num_probes or DEFAULT_NUM_PROBES.get(method)


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
               num_probes: int | None = None, hnsw_m: int = 32,
               ef_search: int = 256, ef_construction: int = 80,
               chunk_size: int = DEFAULT_CHUNK_SIZE, normalize: bool = True,
               seed: int = 0, progress_bar: bool | None = None) -> KNN:
    r"""Finds each node's ``k`` most cosine-similar nodes, itself first.

    Args:
        x (np.ndarray): Features ``[N, D]``.
        k (int): Row length, the node itself included (``k <= N``).
        method (str, optional): ``'flat'`` (exact), ``'ivf'`` (inverted lists,
            ``num_lists`` x ``num_probes``), ``'hnsw'``, ``'blocked'``
            (the kNN graph by list-major blocks of matrix products in torch,
            :func:`blocked_search`; on any torch device) or ``'auto'``
            (:func:`resolve_knn_method`: exact up to 200K nodes, blocked
            above). (default: ``'flat'``)
        device (str, optional): ``'cpu'`` or ``'cuda[:i]'`` (faiss-gpu;
            without it, ``'flat'`` runs in torch, see
            :func:`torch_exact_search`). (default: ``'cpu'``)
        num_lists (int, optional): IVF / blocked lists; :math:`4\sqrt{N}` if
            omitted.
        num_probes (int, optional): IVF / blocked lists visited per query;
            :data:`DEFAULT_NUM_PROBES` (64 for IVF, 128 for blocked) if
            omitted.
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
    method = resolve_knn_method(method, num_nodes)
    num_probes = default_num_probes(method, num_probes)
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
    if method == 'blocked':
        return blocked_search(x, k, num_lists, num_probes, device=device,
                              seed=seed, progress_bar=progress_bar)
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


# Lists scored against each list first, nearest centroids first: every row's
# starting top-k (and the floor new candidates must beat). 8 lists leave ~190
# candidates per node above the floor at 100K (601 with the own list alone).
NEARBY_LISTS = 8


def blocked_search(x: np.ndarray, k: int, num_lists: int | None = None,
                   num_probes: int = DEFAULT_NUM_PROBES['blocked'],
                   device: str = 'cpu', seed: int = 0,
                   max_block_elements: int = 2**24,
                   progress_bar: bool = False) -> KNN:
    r"""Approximate cosine kNN *graph* of L2-normalised ``x`` (every node
    queries the same base): IVF turned list-major and symmetric, by blocks
    of exact matrix products in torch, in one pass over the lists.

    1. Spherical k-means (faiss) on :math:`\min(N, 40 L)` sampled rows gives
       ``L`` centroids; every node probes its ``P`` most similar centroids
       and is a member of the list of the first one. Nodes are renumbered
       list by list, so that a list's members are one slice of the rows.
    2. Each list is scored against the members of its
       :data:`NEARBY_LISTS` nearest lists (by centroid): every row's
       starting top-``k``, whose ``k``-th similarity is the row's *floor*.
    3. For each list :math:`m`, its members :math:`M_m` and the nodes
       :math:`Q_m` that probe it are scored with one product
       :math:`\mathbf{X}_{Q_m} \mathbf{X}_{M_m}^\top`. A score above a
       row's floor is a candidate: for the prober (as IVF does), and for the
       member as well when the member does not probe the prober's list (a
       similarity is symmetric, so the pair is found when either node probes
       the other's list). Candidates go to a per-row buffer of
       :math:`3k` (:class:`_CandidateBuffer`); a full row keeps its best
       ``k`` and raises its floor. The last step is one top-``k`` per row.

    Each node is scored exactly against the lists it probes, as in IVF (the
    same :math:`N P \frac{N}{L} D` multiply-adds), but a list's vectors are
    read once for all the nodes that probe it: matrix products instead of
    memory-bound scans, and each product serves both of its sides. With
    ``num_probes = num_lists`` the search is exact.

    Memory, in bytes per node: the features and their list-major copy
    (:math:`8 D`); while the probes are turned list-major, the int64 probes,
    their sorted ``node * L + list`` keys and the sort order (:math:`24 P`);
    then the keys and the int32 prober table (:math:`12 P`) with the
    candidate buffer (:math:`24 k`) and the result (:math:`12 k`). The peak
    is :math:`8 D + \max(24 P, 12 P + 36 k)`: 6.3 KB for D=256, P=128, k=80
    (3.8 GB at 584K, 11 GB at 1.74M), plus blocks of ``max_block_elements``
    floats (~0.3 GB).

    Args:
        x (np.ndarray): ``[N, D]`` unit rows.
        k (int): Row length, the node itself included.
        num_lists (int, optional): k-means lists ``L``; :math:`4\sqrt{N}`
            (:func:`default_num_lists`) if omitted.
        num_probes (int, optional): Lists probed per node ``P``, at most
            ``L``. (default: ``128``)
        device (str, optional): Torch device of the products.
            (default: ``'cpu'``)
        seed (int, optional): Seed of the k-means sample and
            initialisation. (default: ``0``)
        max_block_elements (int, optional): Largest similarity block in
            elements; a list probed by more rows is scored in row chunks.
        progress_bar (bool, optional): Show a progress bar.

    Returns:
        KNN: as :func:`knn_search`.
    """
    import torch

    num_nodes = x.shape[0]
    num_lists = min(num_lists or default_num_lists(num_nodes), num_nodes)
    num_probes = min(num_probes, num_lists)
    centroids = torch.from_numpy(_spherical_kmeans(x, num_lists, seed)).to(
        device)
    features = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(
        device)
    probes = torch.empty((num_nodes, num_probes), dtype=torch.int64,
                         device=device)
    rows = max(1, max_block_elements // num_lists)
    for start in range(0, num_nodes, rows):
        probes[start:start + rows] = (
            features[start:start + rows] @ centroids.T).topk(
                num_probes, dim=1).indices
    order = torch.argsort(probes[:, 0], stable=True)  # list-major numbering
    base = features[order]
    del features
    probes = probes[order]
    home = probes[:, 0]
    list_start = _offsets(home, num_lists)
    # (node, probed list) pairs as sorted keys node * L + list.
    probe_keys = (torch.arange(num_nodes, device=device)[:, None] * num_lists
                  + probes.sort(dim=1).values).view(-1)
    probed = probes[:, 1:].reshape(-1)  # (node, probe) positions
    del probes
    prober_start = _offsets(probed, num_lists)
    probers = (torch.argsort(probed, stable=True)
               // max(1, num_probes - 1)).to(torch.int32)
    del probed
    nearby = (centroids @ centroids.T).topk(min(NEARBY_LISTS, num_lists),
                                            dim=1).indices
    is_nearby = torch.zeros(num_lists, num_lists, dtype=torch.bool,
                            device=device)
    is_nearby[torch.arange(num_lists, device=device)[:, None], nearby] = True

    def members(list_id: int) -> slice:
        return slice(int(list_start[list_id]), int(list_start[list_id + 1]))

    buffer = _CandidateBuffer(num_nodes, k, device)
    for list_id in tqdm(range(num_lists), desc='kNN lists (nearby)',
                        unit='list', disable=not progress_bar):
        own = members(list_id)
        columns = torch.cat([torch.arange(members(other).start,
                                          members(other).stop, device=device)
                             for other in nearby[list_id].tolist()])
        buffer.start(own, columns, base[own] @ base[columns].T)

    for list_id in tqdm(range(num_lists), desc='kNN lists (probers)',
                        unit='list', disable=not progress_bar):
        own = members(list_id)
        if own.start == own.stop:
            continue
        list_probers = probers[prober_start[list_id]:
                               prober_start[list_id + 1]]
        rows = max(1, max_block_elements // (own.stop - own.start))
        for start in range(0, list_probers.numel(), rows):
            row_ids = list_probers[start:start + rows].to(torch.int64)
            scores = base[row_ids] @ base[own].T
            # One pass over the block: scores above either side's floor.
            row, column = (scores > torch.minimum(
                buffer.floor[row_ids, None], buffer.floor[own][None, :])
            ).nonzero(as_tuple=True)
            prober, member = row_ids[row], own.start + column
            value = scores[row, column]
            other_home = home[prober]
            # The prober's side, unless the list was one of its nearby ones.
            take = ~is_nearby[other_home, list_id]
            buffer.add(prober[take], member[take], value[take])
            # The member's side, unless the member scores the prober's list
            # itself (as a nearby list or a probe).
            take = ~(is_nearby[list_id, other_home]
                     | _contains(probe_keys, member * num_lists + other_home))
            member, prober, value = member[take], prober[take], value[take]
            by_member = torch.argsort(member, stable=True)
            buffer.add(member[by_member], prober[by_member], value[by_member])

    neighbor, similarity = buffer.top_k()
    original = torch.empty_like(order)
    original[order] = torch.arange(num_nodes, device=device)
    neighbor = torch.where(neighbor < 0, neighbor, order[neighbor.clamp(min=0)])
    neighbor = neighbor[original].cpu().numpy()
    similarity = similarity[original].cpu().numpy()
    similarity[neighbor < 0] = -1  # fewer than k candidates
    return KNN(*_put_self_first(neighbor, similarity, x,
                                np.arange(num_nodes)))


def _offsets(group: torch.Tensor, num_groups: int) -> torch.Tensor:
    r"""``[G + 1]`` start offsets of each group id's run once ``group`` is
    sorted (a CSR pointer)."""
    import torch

    counts = torch.bincount(group, minlength=num_groups)
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


def _contains(sorted_keys: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    r"""Whether each of ``keys`` is in the ascending ``sorted_keys``."""
    import torch

    position = torch.searchsorted(sorted_keys, keys).clamp(
        max=sorted_keys.numel() - 1)
    return sorted_keys[position] == keys


class _CandidateBuffer:
    r"""Per-row candidate lists for a top-``k`` search, without a merge per
    block: ``[N, 3k]`` ids and similarities, a fill count and a floor per
    row. Candidates at or below their row's floor are dropped; a row that
    fills up keeps its best ``k`` and its ``k``-th similarity becomes the
    floor. Every candidate of a row must be new to it (no duplicates)."""

    def __init__(self, num_nodes: int, k: int, device: str) -> None:
        import torch

        self.k, self.capacity = k, 3 * k
        self.ids = torch.full((num_nodes, self.capacity), -1,
                              dtype=torch.int32, device=device)
        self.values = torch.full((num_nodes, self.capacity), -torch.inf,
                                 device=device)
        self.fill = torch.zeros(num_nodes, dtype=torch.int64, device=device)
        self.floor = torch.full((num_nodes,), -torch.inf, device=device)

    def start(self, rows: slice, columns: torch.Tensor,
              scores: torch.Tensor) -> None:
        r"""Sets the rows' first candidates: the top-``k`` of their
        ``[R, W]`` scores against ``columns``, and the floors."""
        top = scores.topk(min(self.k, columns.numel()), dim=1)
        width = top.indices.shape[1]
        self.ids[rows, :width] = columns[top.indices].to(self.ids.dtype)
        self.values[rows, :width] = top.values
        self.fill[rows] = width
        if width == self.k:
            self.floor[rows] = top.values[:, -1]

    def add(self, rows: torch.Tensor, ids: torch.Tensor,
            values: torch.Tensor) -> None:
        r"""Adds candidates (``rows``, ``ids``, ``values``), ``[E]`` each,
        with equal rows next to each other."""
        import torch

        keep = values > self.floor[rows]
        rows, ids, values = rows[keep], ids[keep], values[keep]
        if rows.numel() == 0:
            return
        touched, counts = torch.unique_consecutive(rows, return_counts=True)
        full = self.fill[touched] + counts > self.capacity
        if full.any():
            self._keep_best(touched[full])
            keep = values > self.floor[rows]
            rows, ids, values = rows[keep], ids[keep], values[keep]
            touched, counts = torch.unique_consecutive(rows,
                                                       return_counts=True)
            room = self.capacity - self.fill[touched]
            if (counts > room).any():  # room >= 2k: the best `room` suffice
                order = torch.argsort(values, descending=True)
                order = order[torch.argsort(rows[order], stable=True)]
                rows, ids, values = rows[order], ids[order], values[order]
                keep = _rank_in_run(counts) < room.repeat_interleave(counts)
                rows, ids, values = rows[keep], ids[keep], values[keep]
                touched, counts = torch.unique_consecutive(
                    rows, return_counts=True)
        slot = self.fill[rows] + _rank_in_run(counts)
        self.ids[rows, slot] = ids.to(self.ids.dtype)
        self.values[rows, slot] = values
        self.fill[touched] += counts

    def _keep_best(self, rows: torch.Tensor) -> None:
        top = self.values[rows].topk(self.k, dim=1)
        self.ids[rows, :self.k] = self.ids[rows].gather(1, top.indices)
        self.values[rows, :self.k] = top.values
        self.values[rows, self.k:] = -float('inf')
        self.ids[rows, self.k:] = -1
        self.fill[rows] = self.k
        self.floor[rows] = top.values[:, -1]

    def top_k(self) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Each row's ``k`` best candidates: int64 ids (``-1`` where a row
        has fewer) and similarities, ``[N, k]`` each, best first."""
        import torch

        top = self.values.topk(self.k, dim=1)
        return (self.ids.gather(1, top.indices).to(torch.int64), top.values)


def _rank_in_run(counts: torch.Tensor) -> torch.Tensor:
    r"""Position of each element within its run, for runs of ``counts``
    consecutive elements: ``[0, 1, .., c_0 - 1, 0, 1, ..]``."""
    import torch

    first = torch.cumsum(counts, 0) - counts
    return (torch.arange(int(counts.sum()), device=counts.device)
            - torch.repeat_interleave(first, counts))


def _spherical_kmeans(x: np.ndarray, num_lists: int, seed: int) -> np.ndarray:
    r"""``[L, D]`` unit centroids of faiss' spherical k-means (10 rounds) on
    :math:`\min(N, 40 L)` rows sampled with ``seed``."""
    import faiss

    num_nodes = x.shape[0]
    rng = np.random.default_rng(seed)
    sample = x[np.sort(rng.choice(num_nodes, min(num_nodes, 40 * num_lists),
                                  replace=False))]
    kmeans = faiss.Kmeans(x.shape[1], num_lists, niter=10, seed=seed,
                          spherical=True, max_points_per_centroid=40,
                          min_points_per_centroid=1)
    kmeans.train(sample)
    return kmeans.centroids


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
    method = resolve_knn_method(method, x.shape[0])
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
