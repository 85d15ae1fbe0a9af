r"""Map-equation clustering of any weighted edge set (`Rosvall and
Bergstrom, 2008 <https://doi.org/10.1073/pnas.0706851105>`_): the core that
the ``infomap`` baseline (kNN similarities), ``fc-es`` (neighbour-based edge
probabilities) and ``learned-edges`` (learned edge probabilities) share,
for any edge list (:func:`map_equation_clusters`) and for links kept in
the dense kNN rows (:func:`knn_map_equation_clusters`).

Only the edges differ between those methods; the walker, the two-level
partition, the node order Infomap works in, the handling of unlinked
nodes and, for networks too large for Infomap's own memory, the grouping
of nodes before the walk (:func:`strongest_link_groups`) are here, once.
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
from scipy.sparse.csgraph import connected_components, reverse_cuthill_mckee
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

#: Above this many links, Infomap walks groups of nodes
#: (:func:`strongest_link_groups`) instead of the nodes themselves: its own
#: network costs ~94 bytes per link (measured with infomap 2.16), 9.4 GB at
#: this count.
COARSEN_ABOVE = 100_000_000

#: Infomap's teleportation probability in its directed flow model.
TELEPORTATION = 0.15


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
    module = _module_ids(model, num_nodes)  # by Infomap's node id
    del model
    _return_freed_memory()
    return relabel_by_first_appearance(module[position])


def link_flow(adjacency: sp.csr_matrix, directed: bool = True,
              tolerance: float = 1e-15, max_iterations: int = 200
              ) -> tuple[sp.csr_matrix, np.ndarray]:
    r"""The flow Infomap's random walker puts on each link and node, as its
    ``directed`` (or ``undirected``) flow model computes it.

    Directed: from node :math:`i` the walker follows link :math:`i \to j`
    with probability :math:`w_{ij} / w_i` (:math:`w_i = \sum_j w_{ij}`),
    and with probability :math:`\alpha` = :data:`TELEPORTATION` (always, from
    a node without out-links) it teleports to a node :math:`j` chosen with
    probability :math:`t_j = w_j / \sum_m w_m` (teleportation to links).
    Its visit rates solve

    .. math::
        p = (1 - \alpha) \mathbf{P}^\top p + \Big(\alpha + (1 - \alpha)
        \sum_{d:\, w_d = 0} p_d\Big) t,

    and the teleportation steps are not recorded: link :math:`i \to j`
    carries :math:`f_{ij} \propto p_i w_{ij} / w_i`, normalised to sum to
    :math:`1`, and node :math:`j` the flow that enters it,
    :math:`\sum_i f_{ij}`. Undirected (``adjacency`` symmetric):
    :math:`f_{ij} = w_{ij} / \sum w` and node :math:`i` gets
    :math:`\sum_j f_{ij}`.

    Args:
        adjacency (scipy.sparse.csr_matrix): ``[N, N]`` link weights, row
            ``i`` holding ``i``'s out-links (a self-link is walked as
            Infomap walks it), duplicates summed. Its values are
            overwritten by the link flow.
        directed (bool, optional): The directed model; otherwise
            ``adjacency`` must hold each undirected link both ways.
            (default: :obj:`True`)
        tolerance (float, optional): Stop the power iteration when the
            visit rates change by less than this (L1), after 50 iterations
            at least, as Infomap does. (default: ``1e-15``)
        max_iterations (int, optional): Iterations at most.
            (default: ``200``)

    Returns:
        tuple: ``adjacency`` holding the link flow (``[N, N]``, float64),
        and the node flow ``[N]``.
    """
    adjacency.data = adjacency.data.astype(np.float64, copy=False)
    out_weight = np.asarray(adjacency.sum(axis=1)).ravel()
    if directed:
        dangling = out_weight == 0
        step = np.divide(1.0, out_weight, out=np.zeros_like(out_weight),
                         where=~dangling)
        teleport = out_weight / out_weight.sum()
        visits = np.full(out_weight.size, 1.0 / out_weight.size)
        for iteration in range(max_iterations):
            moved = (1 - TELEPORTATION) * (adjacency.T @ (visits * step))
            moved += (TELEPORTATION + (1 - TELEPORTATION)
                      * visits[dangling].sum()) * teleport
            moved /= moved.sum()
            change = float(np.abs(moved - visits).sum())
            visits = moved
            if iteration >= 50 and change < tolerance:
                break
        scale = visits * step
    else:
        scale = np.ones_like(out_weight)
    adjacency.data *= np.repeat(scale, np.diff(adjacency.indptr))
    adjacency.data /= adjacency.data.sum()
    return adjacency, np.asarray(adjacency.sum(axis=0)).ravel()


def _plogp(values: np.ndarray) -> np.ndarray:
    r""":math:`p \log_2 p`, with :math:`0 \log 0 = 0`."""
    values = np.asarray(values, dtype=np.float64)
    return values * np.log2(np.where(values > 0, values, 1.0))


def partition_codelength(flow: sp.spmatrix, node_flow: np.ndarray,
                         labels: np.ndarray) -> float:
    r"""The two-level map equation of a partition: the bits per step that
    describe the walk of :func:`link_flow` with one codebook per module
    and an index codebook between them,

    .. math::
        L(\mathsf{M}) = q \log q - \sum_m q_m^{\curvearrowleft} \log
        q_m^{\curvearrowleft} - \sum_m q_m^{\curvearrowright} \log
        q_m^{\curvearrowright} - \sum_\alpha p_\alpha \log p_\alpha +
        \sum_m (q_m^{\curvearrowright} + p_m) \log
        (q_m^{\curvearrowright} + p_m),

    with :math:`q_m^{\curvearrowleft}` and :math:`q_m^{\curvearrowright}`
    the flow on links entering and leaving module :math:`m`,
    :math:`q = \sum_m q_m^{\curvearrowleft}` and :math:`p_m` the flow of
    its nodes (logarithms base 2). It equals Infomap's codelength of the
    same partition.

    Args:
        flow (scipy.sparse matrix): ``[N, N]`` link flow (COO is read
            as it is; other formats are converted on every call).
        node_flow (np.ndarray): ``[N]`` node flow.
        labels (np.ndarray): ``[N]`` module ids ``0..M-1``.
    """
    flow = flow.tocoo()
    crossing = labels[flow.row] != labels[flow.col]
    crossing_flow = flow.data[crossing]
    num_modules = int(labels.max()) + 1
    enter = np.bincount(labels[flow.col[crossing]], weights=crossing_flow,
                        minlength=num_modules)
    leave = np.bincount(labels[flow.row[crossing]], weights=crossing_flow,
                        minlength=num_modules)
    module_flow = np.bincount(labels, weights=node_flow,
                              minlength=num_modules)
    return float(_plogp(enter.sum()) - _plogp(enter).sum()
                 - _plogp(leave).sum() - _plogp(node_flow).sum()
                 + _plogp(leave + module_flow).sum())


def strongest_link_groups(adjacency: sp.csr_matrix) -> np.ndarray:
    r"""Groups of nodes joined by each node's strongest link, where that
    link is reciprocated.

    Node :math:`i` points to its strongest neighbour
    :math:`j = \arg\max_j \max(w_{ij}, w_{ji})` when the two link both
    ways; the groups are the connected components of those pointers (the
    first level of FINCH, `Sarfraz et al., 2019
    <https://arxiv.org/abs/1902.11266>`_, on reciprocated links only). Infomap
    then walks the groups, with the flow of their nodes and links summed:
    the map equation of a partition of the groups differs from that of the
    same partition of their nodes by a constant (the entropy of the visits
    within each group), so the walk finds the best partitions of the nodes
    that keep every group whole.

    Args:
        adjacency (scipy.sparse.csr_matrix): ``[N, N]`` positive link
            weights, row ``i`` holding ``i``'s out-links.

    Returns:
        np.ndarray: int64 ``[N]`` group ids ``0..G-1``.
    """
    num_nodes = adjacency.shape[0]
    indptr, indices = adjacency.indptr, adjacency.indices
    counts = np.diff(indptr)
    weight = adjacency.data
    is_self = indices == np.repeat(np.arange(num_nodes, dtype=indices.dtype),
                                   counts)
    if is_self.any():  # self-links weigh 0 here
        weight = np.where(is_self, 0.0, weight)
    del is_self
    # Each node's strongest out-link (its row's largest weight) ...
    out_weight = np.zeros(num_nodes)
    filled = counts > 0
    out_weight[filled] = np.maximum.reduceat(weight, indptr[:-1][filled])
    at = np.flatnonzero(weight == np.repeat(out_weight, counts))
    source = np.searchsorted(indptr, at, side='right') - 1
    out_best = np.full(num_nodes, -1, dtype=np.int64)
    out_best[source[::-1]] = indices[at[::-1]]  # the first of equals
    # ... and in-link (the largest weight pointing at it).
    in_weight = np.zeros(num_nodes)
    np.maximum.at(in_weight, indices, weight)
    at = np.flatnonzero(weight == in_weight[indices])
    in_best = np.full(num_nodes, -1, dtype=np.int64)
    in_best[indices[at[::-1]]] = np.searchsorted(indptr, at[::-1],
                                                 side='right') - 1
    del at, source, weight
    strongest = np.where(in_weight > out_weight, in_best, out_best)
    node = np.flatnonzero(np.maximum(in_weight, out_weight) > 0)
    strongest = strongest[node]
    both = ((np.asarray(adjacency[node, strongest]).ravel() > 0)
            & (np.asarray(adjacency[strongest, node]).ravel() > 0))
    pointers = sp.csr_matrix((np.ones(int(both.sum()), dtype=np.int8),
                              (node[both], strongest[both])),
                             shape=adjacency.shape)
    _, group = connected_components(pointers, directed=True,
                                    connection='weak')
    return group.astype(np.int64)


def _grouped_network(adjacency: sp.csr_matrix, directed: bool
                     ) -> tuple[np.ndarray, sp.coo_matrix, np.ndarray]:
    r"""The groups of :func:`strongest_link_groups` as a network: the group
    of each node (``[N]``), the :func:`link_flow` between groups (``[G,
    G]``, summed over their nodes' links, the links within a group left
    out) and each group's node flow (``[G]``). The links are summed in
    blocks of about :data:`LINK_BLOCK` * 4, so that no per-link array of
    all of them is built beside the flow."""
    group = strongest_link_groups(adjacency)
    num_groups = int(group.max()) + 1 if group.size else 0
    flow, node_flow = link_flow(adjacency, directed)
    group_id = group.astype(np.int32)
    group_flow = sp.csr_matrix((num_groups, num_groups))
    rows_per_block = max(1, 4 * LINK_BLOCK * group.size // max(1, flow.nnz))
    for start in range(0, group.size, rows_per_block):
        rows = flow[start:start + rows_per_block]
        source = np.repeat(group_id[start:start + rows_per_block],
                           np.diff(rows.indptr))
        target = group_id[rows.indices]
        between = source != target
        group_flow += sp.csr_matrix((rows.data[between],
                                     (source[between], target[between])),
                                    shape=(num_groups, num_groups))
    return group, group_flow.tocoo(), np.bincount(group, node_flow,
                                                  minlength=num_groups)


def _precomputed_model(flow: sp.coo_matrix, node_flow: np.ndarray,
                       num_trials: int = 1, seed: int = 1,
                       markov_time: float = 1.0, **options: Any) -> Any:
    r"""An Infomap model that walks the given flow: its ``precomputed``
    flow model, the node flow given as node weights, and further Infomap
    ``options``."""
    Infomap = _infomap_class()
    from infomap import Options  # after faiss, as _infomap_class is

    model = Infomap(two_level=True, silent=True, num_trials=num_trials,
                    seed=seed, markov_time=markov_time,
                    options=Options(flow_model='precomputed',
                                    use_node_weights_as_flow=True,
                                    **options))
    for node, rate in enumerate(node_flow.tolist()):
        model.add_node(node, teleportation_weight=rate)
    for start in range(0, flow.nnz, LINK_BLOCK):
        block = slice(start, start + LINK_BLOCK)
        model.add_links(np.stack([flow.row[block], flow.col[block],
                                  flow.data[block]], axis=1))
    return model


def _grouped_partition(adjacency: sp.csr_matrix, directed: bool,
                       markov_time: float, num_trials: int, seed: int
                       ) -> np.ndarray:
    r"""Infomap on the groups of :func:`strongest_link_groups`
    (:func:`_grouped_network`), and the labels of their nodes, numbered by
    first appearance."""
    group, flow, node_flow = _grouped_network(adjacency, directed)
    logger.info('Infomap on %d groups of %d nodes, %d links between them',
                node_flow.size, group.size, flow.nnz)
    model = _precomputed_model(flow, node_flow, num_trials=num_trials,
                               seed=seed + 1, markov_time=markov_time)
    del flow
    module = _module_ids(model, node_flow.size)
    del model
    _return_freed_memory()
    return relabel_by_first_appearance(module[group])


def _module_ids(model: Any, num_nodes: int) -> np.ndarray:
    r"""Runs ``model`` and returns its ``[num_nodes]`` module ids. The
    caller drops the model and calls :func:`_return_freed_memory`."""
    modules = _partition(model)
    module = np.full(num_nodes, -1, dtype=np.int64)
    module[np.fromiter(modules.keys(), dtype=np.int64, count=len(modules))
           ] = np.fromiter(modules.values(), dtype=np.int64,
                           count=len(modules))
    return module


def _check_walk(markov_time: float, num_trials: int) -> None:
    if markov_time <= 0:
        raise ValueError(f'markov_time must be positive (got {markov_time})')
    if num_trials < 1:
        raise ValueError(f'num_trials must be at least 1 (got {num_trials})')


def map_equation_clusters(edge_index: Tensor, edge_weight: Tensor | None,
                          num_nodes: int, directed: bool = True,
                          markov_time: float = 1.0, num_trials: int = 1,
                          seed: int = 0, coarsen_above: int = COARSEN_ABOVE
                          ) -> np.ndarray:
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
        coarsen_above (int, optional): With more links than this, Infomap
            walks the groups of :func:`strongest_link_groups`: ~28 instead
            of ~94 bytes per link and faster, at up to -0.3 points of
            pairwise F on the sets measured (``benchmarks/README.md``).
            (default: :data:`COARSEN_ABOVE`)

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
    if edge_index.size(1) > coarsen_above:
        source, target = edge_index.numpy()
        weight = (np.ones(source.size) if edge_weight is None
                  else edge_weight.double().numpy())
        if not directed:  # each pair both ways
            source, target = (np.concatenate([source, target]),
                              np.concatenate([target, source]))
            weight = np.concatenate([weight, weight])
        adjacency = sp.csr_matrix((weight, (source, target)),
                                  shape=(num_nodes, num_nodes))  # summed
        return _grouped_partition(adjacency, directed, markov_time,
                                  num_trials, seed)
    order = locality_order(_edge_adjacency(edge_index, num_nodes))
    return _partition_of_links(_edge_blocks(edge_index, edge_weight), order,
                               directed, markov_time, num_trials, seed)


def knn_map_equation_clusters(neighbor: Tensor, weight: Tensor, keep: Tensor,
                              markov_time: float = 1.0, num_trials: int = 1,
                              seed: int = 0,
                              coarsen_above: int = COARSEN_ABOVE
                              ) -> np.ndarray:
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
        coarsen_above (int, optional): See :func:`map_equation_clusters`.

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
    if kept_ids.numel() > coarsen_above:
        adjacency = csr_from_rows(keep.sum(dim=1).numpy(), kept_ids.numpy(),
                                  weight[keep].double().numpy())
        del kept_ids
        adjacency.sum_duplicates()
        return _grouped_partition(adjacency, True, markov_time, num_trials,
                                  seed)
    order = locality_order(csr_from_rows(
        keep.sum(dim=1).numpy(), kept_ids.numpy(),
        np.ones(kept_ids.numel(), dtype=np.int8)))
    del kept_ids
    return _partition_of_links(_knn_blocks(neighbor, weight, keep), order,
                               True, markov_time, num_trials, seed)
