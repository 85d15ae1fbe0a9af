r"""Map-equation clustering of any weighted edge set (`Rosvall and
Bergstrom, 2008 <https://doi.org/10.1073/pnas.0706851105>`_): the core that
the ``infomap`` baseline (kNN similarities), ``fc-es`` (neighbour-based edge
probabilities) and ``learned-edges`` (learned edge probabilities) share,
for any edge list (:func:`map_equation_clusters`) and for links kept in
the dense kNN rows (:func:`knn_map_equation_clusters`).

Only the edges differ between those methods; the walker, the two-level
partition, the node order Infomap works in and the handling of unlinked
nodes are here, once.
"""
from __future__ import annotations

import ctypes
import gc
import logging
import sys
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import reverse_cuthill_mckee
from torch import Tensor
from torch_geometric.utils import coalesce

from ltc_pyg.graph.components import relabel_by_first_appearance
from ltc_pyg.graph.sparse import csr_from_rows

logger = logging.getLogger(__name__)


def _infomap_class() -> type:
    r"""``infomap.Infomap``, imported after faiss (see
    :func:`_partition`)."""
    import faiss  # noqa: F401  (must precede infomap, see _partition)
    from infomap import Infomap

    return Infomap


def _partition(model: Any) -> dict[int, int]:
    r"""Runs Infomap and returns ``{node: module}``.

    faiss and infomap are both SWIG extensions and share SWIG's runtime type
    table: the one imported last registers its Python class for SWIG's
    iterator type. When faiss was imported after infomap (a caller that
    imported infomap itself, first), reading ``run().modules()`` iterates
    with faiss's class and crashes the interpreter (segmentation fault;
    infomap 2.16, faiss 1.15). :func:`_infomap_class` imports faiss first;
    in the other order the partition is read through the legacy accessor,
    which does not iterate in Python.
    """
    names = list(sys.modules)
    result = model.run()
    if names.index('faiss') < names.index('infomap'):
        return result.modules()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the legacy accessor's deprecation
        return model.get_modules()


def _return_freed_memory() -> None:
    r"""Frees a dropped Infomap model's network now. An Infomap model and the
    result of its run refer to each other, a cycle that only the garbage
    collector breaks: until it runs, ~100 B per link stay held (measured
    at 62K nodes; about 3 GB for the 30M links of ``learned-edges`` at
    584K, through the merge that follows). glibc then keeps the freed heap
    for reuse unless asked to return it."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):  # not glibc: the heap is kept
        pass


#: A block of links, ``(source, target, weight)`` as ``[B]`` tensors (no
#: weight: all :math:`1`).
LinkBlock = tuple[Tensor, Tensor, Tensor | None]

#: Links handed to Infomap per call (a ``[LINK_BLOCK, 3]`` float64 block).
LINK_BLOCK = 1 << 20


def locality_order(adjacency: sp.csr_matrix) -> np.ndarray:
    r"""An order of the nodes in which linked nodes sit close together:
    reverse Cuthill-McKee over the links of ``adjacency`` (``[N, N]``,
    row ``i`` holds ``i``'s links, each read in its own direction).

    Infomap keeps its network in trees and arrays indexed by node id, and
    its walk jumps from a node to the nodes it links to; numbered in this
    order, those jumps stay within memory the cache holds. At 100K nodes
    (4.5M ``fc-es`` links) Infomap took 18 s in this order against 39 s in
    the kNN file's order, for the same pairwise F; the order itself took
    0.1 s.

    Returns:
        np.ndarray: ``[N]`` node ids, in their new order.
    """
    return reverse_cuthill_mckee(adjacency, symmetric_mode=True)


def _edge_adjacency(edge_index: Tensor, num_nodes: int) -> sp.csr_matrix:
    r"""The ``[N, N]`` pattern of the links ``edge_index[0] ->
    edge_index[1]``."""
    return sp.csr_matrix((np.ones(edge_index.size(1), dtype=np.int8),
                          (edge_index[0].numpy(), edge_index[1].numpy())),
                         shape=(num_nodes, num_nodes))


def _edge_blocks(edge_index: Tensor, edge_weight: Tensor | None
                 ) -> Iterator[LinkBlock]:
    r"""``edge_index`` and ``edge_weight`` in blocks of
    :data:`LINK_BLOCK` links."""
    for start in range(0, edge_index.size(1), LINK_BLOCK):
        block = slice(start, start + LINK_BLOCK)
        yield (edge_index[0, block], edge_index[1, block],
               None if edge_weight is None else edge_weight[block])


def _knn_blocks(neighbor: Tensor, weight: Tensor, keep: Tensor
                ) -> Iterator[LinkBlock]:
    r"""The kept kNN links ``i -> neighbor[i, c]`` in row-major order, in
    blocks of about :data:`LINK_BLOCK` slots."""
    rows_per_block = max(1, LINK_BLOCK // max(1, neighbor.size(1)))
    for start in range(0, neighbor.size(0), rows_per_block):
        rows = slice(start, start + rows_per_block)
        row, column = keep[rows].nonzero(as_tuple=True)
        yield (row + start, neighbor[rows][row, column],
               weight[rows][row, column])


def _partition_of_links(blocks: Iterable[LinkBlock], order: np.ndarray,
                        directed: bool, markov_time: float, num_trials: int,
                        seed: int) -> np.ndarray:
    r"""Runs Infomap on the links of ``blocks``, node ``order[p]`` as
    Infomap's node ``p``, and returns the labels (see
    :func:`map_equation_clusters`).

    The links go through Infomap's bulk numpy path, ``(source, target,
    weight)`` rows per block: its ``edge_index`` adapter walks them one by
    one in Python (22 s against 5 s for 3.4M links, same partition). Every
    node is added, linked or not, as that adapter does.
    """
    num_nodes = order.size
    position = np.empty(num_nodes, dtype=np.int64)
    position[order] = np.arange(num_nodes)
    model = _infomap_class()(two_level=True, directed=directed, silent=True,
                             num_trials=num_trials, seed=seed + 1,
                             markov_time=markov_time)
    model.add_nodes(range(num_nodes))
    for source, target, weight in blocks:
        rows = np.ones((source.numel(), 3))
        rows[:, 0] = position[source.numpy()]
        rows[:, 1] = position[target.numpy()]
        if weight is not None:
            rows[:, 2] = weight.numpy()
        model.add_links(rows)
    modules = _partition(model)
    module = np.full(num_nodes, -1, dtype=np.int64)  # by Infomap's node id
    module[np.fromiter(modules.keys(), dtype=np.int64, count=len(modules))
           ] = np.fromiter(modules.values(), dtype=np.int64,
                           count=len(modules))
    del modules, model
    _return_freed_memory()
    return relabel_by_first_appearance(module[position])


def _check_walk(markov_time: float, num_trials: int) -> None:
    if markov_time <= 0:
        raise ValueError(f'markov_time must be positive (got {markov_time})')
    if num_trials < 1:
        raise ValueError(f'num_trials must be at least 1 (got {num_trials})')


def map_equation_clusters(edge_index: Tensor, edge_weight: Tensor | None,
                          num_nodes: int, directed: bool = True,
                          markov_time: float = 1.0, num_trials: int = 1,
                          seed: int = 0) -> np.ndarray:
    r"""Two-level Infomap partition of a weighted graph.

    The random walker steps along ``edge_index[0] -> edge_index[1]`` with
    probability proportional to the edge weight among the out-links of the
    node it is on (with ``directed=False`` both ways). Infomap chooses the
    partition :math:`\mathsf{M}` of the nodes that minimises the map
    equation, the expected description length of one step of the walk,

    .. math::
        L(\mathsf{M}) = q_{\curvearrowright} H(\mathcal{Q})
        + \sum_{m} p^{m}_{\circlearrowright} H(\mathcal{P}^{m}),

    where :math:`q_{\curvearrowright}` is the rate at which the walker
    switches modules and :math:`p^{m}_{\circlearrowright}` the rate at which
    it moves within (or leaves) module :math:`m`. Nodes without any link
    are singletons. Infomap numbers the nodes in :func:`locality_order`,
    which makes it about twice as fast on kNN graphs.

    Note that this is the plain graph convention (the walker follows the
    edges), not PyG's message flow: for a kNN row ``i`` whose kept
    neighbours are ``j``, pass edges ``i -> j`` (or the rows themselves to
    :func:`knn_map_equation_clusters`).

    Args:
        edge_index (Tensor): ``[2, E]`` links ``source -> target``.
        edge_weight (Tensor, optional): ``[E]`` positive weights (all
            :math:`1` if omitted).
        num_nodes (int): :math:`N`; ids in ``edge_index`` are below it.
        directed (bool, optional): Walk the links in their direction only;
            otherwise both ways, a pair linked both ways once, with the
            larger of its weights. (default: :obj:`True`)
        markov_time (float, optional): Infomap's Markov time; above
            :math:`1` it favours fewer, larger modules. (default: ``1.0``)
        num_trials (int, optional): Independent Infomap runs; the partition
            with the shortest description is kept. (default: ``1``)
        seed (int, optional): Infomap's seed. (default: ``0``)

    Returns:
        np.ndarray: int64 ``[N]`` labels ``0..C-1`` numbered by first
        appearance.
    """
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"Expected 'edge_index' of shape [2, num_edges] "
                         f'(got {tuple(edge_index.shape)})')
    if edge_weight is not None:
        if edge_weight.shape != (edge_index.size(1),):
            raise ValueError(f"Expected 'edge_weight' of shape "
                             f'[{edge_index.size(1)}] (got '
                             f'{tuple(edge_weight.shape)})')
        if edge_weight.numel() and not bool((edge_weight > 0).all()):
            raise ValueError(f"'edge_weight' must be positive (got a minimum "
                             f'of {float(edge_weight.min()):.4g}); drop the '
                             f'links that should not be walked')
    if edge_index.numel() and (int(edge_index.min()) < 0
                               or int(edge_index.max()) >= num_nodes):
        raise ValueError(f"'edge_index' has ids outside [0, {num_nodes})")
    _check_walk(markov_time, num_trials)
    logger.info('Infomap on %d %s links of %d nodes', edge_index.size(1),
                'directed' if directed else 'undirected', num_nodes)
    if not directed:  # one link per pair: the larger weight of the two
        edge_index, edge_weight = coalesce(edge_index.sort(dim=0).values,
                                           edge_weight, num_nodes,
                                           reduce='max')
    order = locality_order(_edge_adjacency(edge_index, num_nodes))
    return _partition_of_links(_edge_blocks(edge_index, edge_weight), order,
                               directed, markov_time, num_trials, seed)


def knn_map_equation_clusters(neighbor: Tensor, weight: Tensor, keep: Tensor,
                              markov_time: float = 1.0, num_trials: int = 1,
                              seed: int = 0) -> np.ndarray:
    r""":func:`map_equation_clusters` of the directed kNN links
    ``i -> neighbor[i, c]`` kept by ``keep[i, c]``, weighted
    ``weight[i, c]``, read from the rows block by block: no ``[2, E]`` edge
    list is built (36 bytes per link less than building one and flipping it
    to the walker's direction; 89M links at 1.74M nodes).

    Args:
        neighbor (Tensor): ``[N, k]`` neighbour ids.
        weight (Tensor): ``[N, k]`` link weights, positive where kept.
        keep (Tensor): bool ``[N, k]``, the slots that are links.
        markov_time (float, optional): See :func:`map_equation_clusters`.
        num_trials (int, optional): See :func:`map_equation_clusters`.
        seed (int, optional): See :func:`map_equation_clusters`.

    Returns:
        np.ndarray: int64 ``[N]`` labels ``0..C-1`` numbered by first
        appearance; nodes without a kept link are singletons.
    """
    if (neighbor.dim() != 2 or weight.shape != neighbor.shape
            or keep.shape != neighbor.shape or keep.dtype != torch.bool):
        raise ValueError(f"Expected 'neighbor', 'weight' and a bool 'keep' "
                         f'of one shape [N, k] (got '
                         f'{tuple(neighbor.shape)}, {tuple(weight.shape)}, '
                         f'{tuple(keep.shape)} {keep.dtype})')
    if bool(((weight <= 0) & keep).any()):
        raise ValueError(f"'weight' must be positive where kept (got a "
                         f'minimum of {float(weight[keep].min()):.4g}); '
                         f'drop the links that should not be walked')
    num_nodes = neighbor.size(0)
    kept_ids = neighbor[keep]
    if kept_ids.numel() and (int(kept_ids.min()) < 0
                             or int(kept_ids.max()) >= num_nodes):
        raise ValueError(f"'neighbor' has kept ids outside [0, {num_nodes})")
    _check_walk(markov_time, num_trials)
    logger.info('Infomap on %d directed kNN links of %d nodes',
                kept_ids.numel(), num_nodes)
    order = locality_order(csr_from_rows(
        keep.sum(dim=1).numpy(), kept_ids.numpy(),
        np.ones(kept_ids.numel(), dtype=np.int8)))
    del kept_ids
    return _partition_of_links(_knn_blocks(neighbor, weight, keep), order,
                               True, markov_time, num_trials, seed)
