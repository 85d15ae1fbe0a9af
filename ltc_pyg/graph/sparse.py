r"""Sparse adjacencies of the kNN affinity graph: the GCN-V/GCN-E
adjacency, row slices of it for mini-batches, and the CSR arrays of either
sparse layout (torch ``sparse_csr`` or ``torch_sparse.SparseTensor``)."""
from __future__ import annotations

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

__all__ = ['gcn_adjacency', 'adjacency_rows', 'csr_arrays']


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


def gcn_adjacency(x: Tensor, neighbor: Tensor, similarity: Tensor,
                  min_similarity: float | None = 0.0,
                  layout: SparseLayout = 'csr') -> Tensor | SparseTensor:
    r"""The GCN-V/GCN-E adjacency ``adj_t`` (sparse ``[N, N]``, ``layout``
    as in :func:`~ltc_pyg.graph.transforms.to_sparse_adjacency`):
    :math:`\mathbf{D}^{-1}(\max(\mathbf{A}, \mathbf{A}^\top) + \mathbf{I})`
    of the kNN similarities, composed from the foundation transforms."""
    transform = T.Compose([
        KNNAffinityGraph(neighbor.size(1), min_similarity=min_similarity,
                         symmetric=True, self_loops=True),
        RowNormalize(),
        ToSparseAdjacency(layout)])
    data = Data(x=x, knn_neighbor=neighbor, knn_similarity=similarity,
                num_nodes=x.size(0))
    return transform(data).adj_t


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
