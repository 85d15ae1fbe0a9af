r"""Sparse adjacencies of the kNN affinity graph: the GCN-V/GCN-E
adjacency, row slices of it for mini-batches, and the CSR arrays of either
sparse layout (torch ``sparse_csr`` or ``torch_sparse.SparseTensor``)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch_geometric.transforms as T
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.typing import SparseTensor

from ltc_pyg.graph.transforms import (
    KNNAffinityGraph,
    RowNormalize,
    SparseLayout,
    ToSparseAdjacency,
    quiet_sparse_warnings,
)

__all__ = ['gcn_adjacency', 'adjacency_rows', 'adjacency_row_block',
           'csr_arrays', 'csr_entry_positions']


def csr_arrays(adj_t: Tensor | SparseTensor
               ) -> tuple[Tensor, Tensor, Tensor]:
    r"""``(rowptr, col, value)`` of a torch sparse CSR tensor or a
    ``torch_sparse.SparseTensor``."""
    if isinstance(adj_t, SparseTensor):
        return adj_t.csr()
    if adj_t.layout != torch.sparse_csr:
        raise ValueError(f'Expected adj_t as a sparse CSR tensor or a '
                         f'SparseTensor (got layout {adj_t.layout})')
    return adj_t.crow_indices(), adj_t.col_indices(), adj_t.values()


def csr_entry_positions(rowptr: Tensor, col: Tensor, row: Tensor,
                        column: Tensor, chunk_size: int = 1 << 20) -> Tensor:
    r"""Where the entries ``(row[q], column[q])`` sit in a CSR matrix whose
    rows hold sorted column ids, ``-1`` for the absent ones.

    A binary search within each queried row, ``chunk_size`` queries at a
    time: :math:`\lceil \log_2(d_{\max} + 1) \rceil` vectorised steps
    for the longest row :math:`d_{\max}`, and no index beyond the matrix
    itself (a sorted ``row * N + column`` key per entry would take 8 bytes
    per entry, 1.6 GB for the 198M entries of a 1.74M-node GCN adjacency).

    Shapes:
        - **input:** ``rowptr`` :math:`(N + 1)`, ``col`` :math:`(E)`,
          ``row`` and ``column`` :math:`(Q)`
        - **output:** int64 :math:`(Q)`
    """
    if col.numel() == 0:  # no entries: nothing to find
        return torch.full((row.numel(), ), -1, dtype=torch.long,
                          device=row.device)
    position = torch.empty(row.numel(), dtype=torch.long, device=row.device)
    last = col.numel() - 1
    for start in range(0, row.numel(), chunk_size):
        rows = row[start:start + chunk_size]
        columns = column[start:start + chunk_size]
        low, end = rowptr[rows].long(), rowptr[rows + 1].long()
        high = end.clone()
        while True:
            active = low < high
            if not bool(active.any()):
                break
            middle = (low + high) // 2
            right = active & (col[middle.clamp(max=last)] < columns)
            low = torch.where(right, middle + 1, low)
            high = torch.where(active & ~right, middle, high)
        found = (low < end) & (col[low.clamp(max=last)] == columns)
        position[start:start + chunk_size] = low.masked_fill_(~found, -1)
    return position


def gcn_adjacency(x: Tensor, neighbor: Tensor, similarity: Tensor,
                  min_similarity: float | None = 0.0,
                  layout: SparseLayout = 'csr') -> Tensor | SparseTensor:
    r"""The GCN-V/GCN-E adjacency ``adj_t`` (sparse ``[N, N]``, ``layout``
    as in :func:`~ltc_pyg.graph.transforms.to_sparse_adjacency`):
    :math:`\mathbf{D}^{-1}(\max(\mathbf{A}, \mathbf{A}^\top) + \mathbf{I})`
    of the kNN similarities.

    With ``min_similarity >= 0`` (all weights non-negative) and no repeated
    id in a row, it is built as a scipy CSR matrix with int32 indices, which
    never holds an int64 ``[2, E]`` edge list: the same matrix bit for bit
    (tested), at a fraction of the memory and time (584K nodes, k=80, 66.7M
    entries: the process peaks at 2.77 instead of 8.72 GB, the graph's
    2.30 GB included; 24 instead of 215 s on shared cores). Otherwise it
    is composed from the foundation transforms
    (:class:`~ltc_pyg.graph.transforms.KNNAffinityGraph`,
    :class:`~ltc_pyg.graph.transforms.RowNormalize`,
    :class:`~ltc_pyg.graph.transforms.ToSparseAdjacency`), whose maximum
    keeps a negative weight that scipy's would compare with an absent 0."""
    if min_similarity is not None and min_similarity >= 0:
        adj_t = _csr_gcn_adjacency(neighbor.numpy(), similarity.numpy(),
                                   min_similarity)
        if adj_t is not None:
            return _from_scipy(adj_t, layout)
    transform = T.Compose([
        KNNAffinityGraph(neighbor.size(1), min_similarity=min_similarity,
                         symmetric=True, self_loops=True),
        RowNormalize(),
        ToSparseAdjacency(layout)])
    data = Data(x=x, knn_neighbor=neighbor, knn_similarity=similarity,
                num_nodes=x.size(0))
    return transform(data).adj_t


def csr_from_rows(row_counts: np.ndarray, columns: np.ndarray,
                  values: np.ndarray) -> sp.csr_matrix:
    r"""The square scipy CSR matrix whose row ``i`` holds the next
    ``row_counts[i]`` entries of ``columns`` / ``values`` (``[E]``, row
    after row, e.g. the kept slots of ``[N, k]`` kNN rows in row-major
    order), with int32 column indices; entries keep their order and
    repeats are not summed."""
    num_nodes = row_counts.size
    indptr = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(row_counts, out=indptr[1:])
    return sp.csr_matrix((values, columns.astype(np.int32), indptr),
                         shape=(num_nodes, num_nodes))


def _csr_gcn_adjacency(neighbor: np.ndarray, similarity: np.ndarray,
                       min_similarity: float) -> sp.csr_matrix | None:
    r""":math:`\mathbf{D}^{-1}(\max(\mathbf{A}, \mathbf{A}^\top) +
    \mathbf{I})` as a float32 scipy CSR matrix (row ``i`` = target ``i``),
    or ``None`` when a row repeats an id (then the torch path takes the
    maximum of the repeats)."""
    num_nodes = neighbor.shape[0]
    keep = similarity >= min_similarity
    keep &= neighbor != np.arange(num_nodes)[:, None]
    adjacency = csr_from_rows(keep.sum(axis=1), neighbor[keep],
                              similarity[keep])
    indptr = adjacency.indptr
    del keep
    adjacency.sort_indices()
    starts = np.zeros(adjacency.nnz, dtype=bool)
    starts[indptr[:-1][np.diff(indptr) > 0]] = True
    if (np.diff(adjacency.indices) == 0)[~starts[1:]].any():
        return None
    adjacency = adjacency.maximum(adjacency.T.tocsr())
    degree = _sequential_row_sums(adjacency) + np.float32(1)
    adjacency = (adjacency + sp.identity(num_nodes, dtype=np.float32,
                                         format='csr')).tocsr()
    adjacency.data /= np.repeat(degree, np.diff(adjacency.indptr))
    return adjacency


def _sequential_row_sums(adjacency: sp.csr_matrix) -> np.ndarray:
    r"""Row sums of a float32 CSR matrix added one entry at a time, left to
    right, in float32: the rounding of the edge-list path's scatter (weights
    into ``i`` in increasing source order; the self-loop is added after).
    Rows are sorted by length so that pass ``p`` adds entry ``p`` of the
    rows that have one: ``max degree`` vectorised passes, ``nnz`` additions.
    """
    counts = np.diff(adjacency.indptr)
    order = np.argsort(-counts, kind='stable')
    descending, starts = counts[order], adjacency.indptr[:-1][order]
    total = np.zeros(counts.size, dtype=np.float32)
    for position in range(int(descending[0]) if counts.size else 0):
        active = int(np.searchsorted(-descending, -position, side='left'))
        total[:active] += adjacency.data[starts[:active] + position]
    sums = np.empty_like(total)
    sums[order] = total
    return sums


def _from_scipy(adjacency: sp.csr_matrix, layout: SparseLayout
                ) -> Tensor | SparseTensor:
    r"""A scipy CSR matrix as ``adj_t`` of ``layout``; a torch CSR tensor
    keeps int32 indices where they fit (456 of its 1,368 bytes per node at
    584K, k=80), a ``SparseTensor`` takes int64."""
    value = torch.from_numpy(adjacency.data.astype(np.float32, copy=False))
    index = (np.int32 if layout == 'csr' and adjacency.nnz < 2**31
             else np.int64)
    rowptr = torch.from_numpy(adjacency.indptr.astype(index, copy=False))
    col = torch.from_numpy(adjacency.indices.astype(index, copy=False))
    if layout == 'sparse_tensor':
        return SparseTensor(rowptr=rowptr, col=col, value=value,
                            sparse_sizes=adjacency.shape, is_sorted=True,
                            trust_data=True)
    with quiet_sparse_warnings():
        return torch.sparse_csr_tensor(rowptr, col, value, adjacency.shape,
                                       check_invariants=False)


def adjacency_row_block(adj_t: Tensor | SparseTensor, start: int, stop: int
                        ) -> Tensor | SparseTensor:
    r"""Rows ``start:stop`` of a sparse ``adj_t`` (``[N, M]``) as a
    ``[stop - start, M]`` adjacency of the same kind whose column ids stay
    global, sharing ``adj_t``'s memory (no copy).

    Full-graph inference multiplies such a block with all the features
    rather than with the features of the block's columns
    (:func:`adjacency_rows`): the product reads only the rows it needs
    either way, and the gather would copy up to all of them per block (at
    584K synthetic nodes, each block of 65,536 rows touched over 99.9% of
    the nodes: a 0.6 GB copy per block).
    """
    if isinstance(adj_t, SparseTensor):
        return adj_t.narrow(0, start, stop - start)
    rowptr, col, value = csr_arrays(adj_t)
    first, last = int(rowptr[start]), int(rowptr[stop])
    with quiet_sparse_warnings():
        return torch.sparse_csr_tensor(
            rowptr[start:stop + 1] - first, col[first:last],
            value[first:last], (stop - start, adj_t.size(1)),
            check_invariants=False)


def adjacency_rows(adj_t: Tensor | SparseTensor, rows: Tensor
                   ) -> tuple[Tensor | SparseTensor, Tensor]:
    r"""The rows ``rows`` of a sparse ``adj_t`` as a bipartite ``[B, U]``
    adjacency of the same kind over the ``U`` distinct columns they touch.

    Returns:
        (Tensor, Tensor): the sub-adjacency and ``n_id`` ``[U]``, the global
        ids of its columns (ascending).
    """
    rowptr, col, value = csr_arrays(adj_t)
    start, count = rowptr[rows], rowptr[rows + 1] - rowptr[rows]
    sub_rowptr = torch.cat([count.new_zeros(1), count.cumsum(0)])
    position = (torch.arange(int(sub_rowptr[-1]), device=rows.device)
                + torch.repeat_interleave(start - sub_rowptr[:-1], count))
    columns = col[position]
    used = torch.zeros(adj_t.size(1), dtype=torch.bool, device=rows.device)
    used[columns] = True
    n_id = used.nonzero().view(-1)
    local = (used.cumsum(0) - 1)[columns]  # global -> position in n_id
    if isinstance(adj_t, SparseTensor):
        return SparseTensor(rowptr=sub_rowptr, col=local,
                            value=value[position],
                            sparse_sizes=(rows.numel(), n_id.numel()),
                            is_sorted=True, trust_data=True), n_id
    with quiet_sparse_warnings():
        sub = torch.sparse_csr_tensor(sub_rowptr, local, value[position],
                                      (rows.numel(), n_id.numel()),
                                      check_invariants=False)
    return sub, n_id
