r"""The kNN affinity graph as a PyG :class:`~torch_geometric.data.Data`, and
the transforms that prepare it for message passing.

PyG's flow is source -> target: node ``i``'s ``k - 1`` neighbours are the
sources of the edges into ``i``. The dense top-k arrays stay on the graph as
``knn_neighbor`` and ``knn_similarity`` (``[N, k]``, itself first, sorted by
decreasing similarity) for algorithms that need per-row order; they are
node ids, so the graph is an :class:`AffinityData` that batching, slicing
and :meth:`~AffinityData.subgraph` keep consistent.
"""
from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform
from torch_geometric.typing import WITH_TORCH_SPARSE, SparseTensor
from torch_geometric.utils import add_self_loops, coalesce, scatter

from ltc_pyg.data.io import KNN
from ltc_pyg.data.validation import check_features, check_knn
from ltc_pyg.graph.knn import KNNMethod, knn_search

logger = logging.getLogger(__name__)

SparseLayout = Literal['csr', 'sparse_tensor']


def knn_to_edges(neighbor: Tensor, similarity: Tensor,
                 min_similarity: float | None = None
                 ) -> tuple[Tensor, Tensor]:
    r"""Turns dense kNN arrays into weighted edges ``j -> i`` for every ``j``
    in row ``i``, without self-loops (removed by id, not by position).

    Args:
        neighbor (Tensor): ``[N, k]`` neighbour ids.
        similarity (Tensor): ``[N, k]`` cosine similarities.
        min_similarity (float, optional): Keep edges with similarity
            :math:`\geq` this value.

    Returns:
        (Tensor, Tensor): ``edge_index`` ``[2, E]`` (row-major in the target,
        kNN order inside a row) and ``edge_weight`` ``[E]``.
    """
    num_nodes, k = neighbor.shape
    target = torch.arange(num_nodes).repeat_interleave(k)
    source = neighbor.reshape(-1)
    weight = similarity.reshape(-1)
    keep = source != target
    if min_similarity is not None:
        keep &= weight >= min_similarity
    return torch.stack([source[keep], target[keep]]), weight[keep]


def symmetrize_max(edge_index: Tensor, edge_weight: Tensor,
                   num_nodes: int) -> tuple[Tensor, Tensor]:
    r"""Element-wise maximum of the weighted adjacency and its transpose,
    :math:`\max(\mathbf{A}, \mathbf{A}^\top)`; edges come back coalesced
    (sorted by source, then target).

    The result equals PyG's ``to_undirected(edge_index, edge_weight,
    num_nodes, reduce='max')`` (tested); this one concatenates the reversed
    edges in one copy instead of two, which lowers the peak memory of the
    GCN-V adjacency of a random 200K-node, k=80 graph (31.8M entries) from
    3.65 to 3.06 GB."""
    both = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    return coalesce(both, torch.cat([edge_weight, edge_weight]), num_nodes,
                    reduce='max')


def row_normalize(edge_index: Tensor, edge_weight: Tensor,
                  num_nodes: int) -> Tensor:
    r"""Divides each weight by the sum of the weights into its target,
    :math:`\mathbf{D}^{-1}\mathbf{A}` with ``A[i, j]`` the weight of
    ``j -> i``, so that aggregation becomes a weighted mean. Targets with a
    zero sum keep zero weights."""
    degree = scatter(edge_weight, edge_index[1], dim=0, dim_size=num_nodes,
                     reduce='sum')
    degree = torch.where(degree == 0, torch.ones_like(degree), degree)
    return edge_weight / degree[edge_index[1]]


@contextmanager
def quiet_sparse_warnings() -> Iterator[None]:
    r"""Silences torch's notices on sparse CSR tensors (support in beta,
    invariant checks off), raised on use with nothing to act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='Sparse (CSR|invariant)')
        yield


def to_sparse_adjacency(edge_index: Tensor, edge_weight: Tensor | None,
                        num_nodes: int, layout: SparseLayout = 'csr'
                        ) -> Tensor | SparseTensor:
    r"""Builds ``adj_t`` ``[N_target, N_source]`` for fused message passing
    (``out = adj_t @ x``), never materialising per-edge messages.

    Args:
        edge_index (Tensor): ``[2, E]`` edges ``source -> target``.
        edge_weight (Tensor, optional): ``[E]`` weights (ones if omitted).
        num_nodes (int): ``N``.
        layout (str, optional): ``'csr'`` for a ``torch.sparse_csr`` tensor,
            or ``'sparse_tensor'`` for ``torch_sparse.SparseTensor`` (needs the
            ``sparse`` extra). (default: ``'csr'``)
    """
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1))
    target, source = edge_index[1], edge_index[0]
    if layout == 'sparse_tensor':
        if not WITH_TORCH_SPARSE:
            raise ValueError("layout='sparse_tensor' needs torch-sparse "
                             "(pip install ltc_pyg[sparse]); use 'csr'")
        return SparseTensor(row=target, col=source, value=edge_weight,
                            sparse_sizes=(num_nodes, num_nodes))
    if layout != 'csr':
        raise ValueError(f"Unknown layout '{layout}' (expected 'csr' or "
                         f"'sparse_tensor')")
    with quiet_sparse_warnings():
        coo = torch.sparse_coo_tensor(torch.stack([target, source]),
                                      edge_weight, (num_nodes, num_nodes),
                                      check_invariants=False)
        return coo.coalesce().to_sparse_csr()


class AffinityData(Data):
    r"""A :class:`~torch_geometric.data.Data` whose ``knn_neighbor``
    ``[N, k]`` holds node ids, like ``edge_index``: batching
    (:meth:`~torch_geometric.data.Batch.from_data_list`) shifts them by
    each graph's node offset, and indexing a batch or a collated dataset
    shifts them back.
    """
    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any
                ) -> Any:
        if key == 'knn_neighbor':
            return self.num_nodes
        return super().__inc__(key, value, *args, **kwargs)

    def subgraph(self, subset: Tensor) -> AffinityData:
        r"""The induced subgraph on ``subset`` (ids or a mask), with
        ``knn_neighbor`` relabelled to the subgraph's ids. When some kept
        row names a node outside ``subset``, its fixed-length kNN row cannot
        be kept: ``knn_neighbor`` and ``knn_similarity`` are dropped with a
        warning (rebuild them with :class:`KNNAffinityGraph`)."""
        data = super().subgraph(subset)
        if 'knn_neighbor' not in data:
            return data
        nodes = subset.nonzero().view(-1) if subset.dtype == torch.bool \
            else subset
        new_id = torch.full((self.num_nodes,), -1, dtype=torch.long,
                            device=nodes.device)
        new_id[nodes] = torch.arange(nodes.numel(), device=nodes.device)
        neighbor = new_id[data.knn_neighbor]
        outside = int((neighbor < 0).any(dim=1).sum())
        if outside:
            warnings.warn(f'subgraph: {outside} of {nodes.numel()} kNN rows '
                          f'name nodes outside the subset; dropped '
                          f'knn_neighbor and knn_similarity (rebuild them '
                          f'with KNNAffinityGraph)', stacklevel=2)
            del data.knn_neighbor, data.knn_similarity
        else:
            data.knn_neighbor = neighbor
        return data


class KNNAffinityGraph(BaseTransform):
    r"""Builds the kNN affinity graph of ``data.x`` (cosine similarity of
    L2-normalised features), from "Learning to Cluster Faces on an Affinity
    Graph" (`Yang et al., CVPR 2019 <https://arxiv.org/abs/1904.02749>`_).

    Sets ``edge_index`` (``j -> i`` for the neighbours ``j`` of ``i``),
    ``edge_weight`` (similarity) and the dense arrays ``knn_neighbor`` /
    ``knn_similarity`` (``[N, k]``). When ``data`` already carries those
    arrays (read from a cached ``.npz``) they are used instead of searching.
    A plain :class:`~torch_geometric.data.Data` comes back as an
    :class:`AffinityData`, so that batches of it stay correct.

    Args:
        k (int): Row length of the kNN lists, the node itself included (as in
            the original ``faiss_k_<k>.npz``), so each node gets up to
            ``k - 1`` in-edges.
        method (str, optional): kNN search, ``'flat'`` / ``'ivf'`` /
            ``'hnsw'``. (default: ``'flat'``)
        min_similarity (float, optional): Drop edges below this similarity.
            (default: :obj:`None`)
        symmetric (bool, optional): Replace the adjacency by
            :math:`\max(\mathbf{A}, \mathbf{A}^\top)`. (default: :obj:`False`)
        self_loops (bool, optional): Add self-loops of weight 1.
            (default: :obj:`False`)
        device (str, optional): Device of the faiss search. (default: ``'cpu'``)
        **search_kwargs: Further :func:`~ltc_pyg.graph.knn.knn_search`
            arguments (``num_probes``, ``ef_search``, ...).
    """
    def __init__(self, k: int, method: KNNMethod = 'flat',
                 min_similarity: float | None = None, symmetric: bool = False,
                 self_loops: bool = False, device: str = 'cpu',
                 **search_kwargs: Any) -> None:
        if k < 1:
            raise ValueError(f"'k' must be at least 1 (got {k})")
        self.k = k
        self.method = method
        self.min_similarity = min_similarity
        self.symmetric = symmetric
        self.self_loops = self_loops
        self.device = device
        self.search_kwargs = search_kwargs

    def forward(self, data: Data) -> AffinityData:
        if not isinstance(data, AffinityData):
            data = AffinityData.from_dict(data.to_dict())
        check_features(data.x)
        num_nodes = data.num_nodes
        if 'knn_neighbor' in data:
            neighbor, similarity = data.knn_neighbor, data.knn_similarity
            check_knn(neighbor, similarity, num_nodes)
            if neighbor.size(1) < self.k:
                raise ValueError(f'The graph carries kNN lists of k='
                                 f'{neighbor.size(1)}, fewer than k={self.k}')
            neighbor, similarity = neighbor[:, :self.k], similarity[:, :self.k]
        else:
            knn = knn_search(data.x.detach().cpu().numpy(), self.k,
                             method=self.method, device=self.device,
                             **self.search_kwargs)
            neighbor, similarity = (torch.from_numpy(knn.neighbor),
                                    torch.from_numpy(knn.similarity))
        edge_index, edge_weight = knn_to_edges(neighbor, similarity,
                                               self.min_similarity)
        if self.min_similarity is not None:
            logger.info('Kept %d of %d kNN edges at similarity >= %s',
                        edge_index.size(1), num_nodes * (self.k - 1),
                        self.min_similarity)
        if self.symmetric:
            edge_index, edge_weight = symmetrize_max(edge_index, edge_weight,
                                                     num_nodes)
        if self.self_loops:
            edge_index, edge_weight = add_self_loops(
                edge_index, edge_weight, fill_value=1.0, num_nodes=num_nodes)
        data.knn_neighbor, data.knn_similarity = neighbor, similarity
        data.edge_index, data.edge_weight = edge_index, edge_weight
        return data

    def __repr__(self) -> str:
        extra = ''.join(f', {key}={value}'
                        for key, value in self.search_kwargs.items())
        return (f'{self.__class__.__name__}(k={self.k}, method={self.method}, '
                f'min_similarity={self.min_similarity}, '
                f'symmetric={self.symmetric}, self_loops={self.self_loops}, '
                f'device={self.device}{extra})')


class RowNormalize(BaseTransform):
    r"""Row-normalises ``edge_weight`` so that the weights into each node sum
    to one, :math:`\mathbf{D}^{-1}\mathbf{A}` (see :func:`row_normalize`)."""
    def forward(self, data: Data) -> Data:
        weight = data.edge_weight
        if weight is None:
            weight = torch.ones(data.edge_index.size(1))
        data.edge_weight = row_normalize(data.edge_index, weight,
                                         data.num_nodes)
        return data


class ToSparseAdjacency(BaseTransform):
    r"""Replaces ``edge_index`` / ``edge_weight`` by ``adj_t``
    (``[N_target, N_source]``, weighted by ``edge_weight``) for fused sparse
    message passing, see :func:`to_sparse_adjacency`.

    With ``layout='csr'`` the result equals PyG's
    ``T.ToSparseTensor(attr='edge_weight', layout=torch.sparse_csr)``, and
    the defaults are PyG's; it is kept for its lower peak memory: the
    GCN-V adjacency of a random 200K-node, k=80 graph (31.8M entries)
    peaks at 3.06 GB with it and 3.35 GB with PyG's, which first sorts a
    copy of the edge list.

    Args:
        layout (str, optional): ``'csr'`` or ``'sparse_tensor'``.
            (default: ``'csr'``)
        remove_edge_index (bool, optional): Delete ``edge_index`` and
            ``edge_weight`` afterwards, as PyG's does. (default: :obj:`True`)
    """
    def __init__(self, layout: SparseLayout = 'csr',
                 remove_edge_index: bool = True) -> None:
        if layout not in ('csr', 'sparse_tensor'):
            raise ValueError(f"Unknown layout '{layout}' (expected 'csr' or "
                             f"'sparse_tensor')")
        self.layout = layout
        self.remove_edge_index = remove_edge_index

    def forward(self, data: Data) -> Data:
        data.adj_t = to_sparse_adjacency(data.edge_index, data.edge_weight,
                                         data.num_nodes, self.layout)
        if self.remove_edge_index:
            del data.edge_index
            del data.edge_weight
        return data

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(layout={self.layout}, '
                f'remove_edge_index={self.remove_edge_index})')


def knn_to_tensors(knn: KNN) -> tuple[Tensor, Tensor]:
    r"""The arrays of a :class:`~ltc_pyg.data.io.KNN` as torch tensors
    (int64 ids, float32 similarities), sharing memory where possible."""
    return (torch.from_numpy(np.ascontiguousarray(knn.neighbor, np.int64)),
            torch.from_numpy(np.ascontiguousarray(knn.similarity,
                                                  np.float32)))
