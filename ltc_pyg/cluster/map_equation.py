r"""Map-equation clustering of any weighted edge set (`Rosvall and
Bergstrom, 2008 <https://doi.org/10.1073/pnas.0706851105>`_): the core that
the ``infomap`` baseline (kNN similarities), ``fc-es`` (neighbour-based edge
probabilities) and ``fc-eser`` (learned edge probabilities) share.

Only the edges differ between those methods; the walker, the two-level
partition and the handling of unlinked nodes are here, once.
"""
from __future__ import annotations

import ctypes
import gc
import logging
import sys
import warnings
from typing import Any

import numpy as np
from torch import Tensor
from torch_geometric.utils import coalesce

from ltc_pyg.graph.components import relabel_by_first_appearance

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


#: Links handed to Infomap per call (a ``[LINK_BLOCK, 3]`` float64 block).
LINK_BLOCK = 1 << 20


def _add_links(model: Any, edge_index: Tensor, edge_weight: Tensor | None,
               num_nodes: int) -> None:
    r"""Adds the nodes ``0..N-1`` and the weighted links to ``model``.

    Through Infomap's bulk numpy path, in blocks of :data:`LINK_BLOCK`
    ``(source, target, weight)`` rows: its ``edge_index`` adapter walks the
    links one by one in Python (22 s against 5 s for 3.4M links, same
    partition). Every node is added, linked or not, as that adapter does.
    """
    model.add_nodes(range(num_nodes))
    for start in range(0, edge_index.size(1), LINK_BLOCK):
        block = slice(start, start + LINK_BLOCK)
        rows = np.ones((edge_index[:, block].size(1), 3))
        rows[:, :2] = edge_index[:, block].t().numpy()
        if edge_weight is not None:
            rows[:, 2] = edge_weight[block].numpy()
        model.add_links(rows)


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
    are singletons.

    Note that this is the plain graph convention (the walker follows the
    edges), not PyG's message flow: for a kNN row ``i`` whose kept
    neighbours are ``j``, pass edges ``i -> j``.

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
    Infomap = _infomap_class()
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
    if markov_time <= 0:
        raise ValueError(f'markov_time must be positive (got {markov_time})')
    if num_trials < 1:
        raise ValueError(f'num_trials must be at least 1 (got {num_trials})')
    logger.info('Infomap on %d %s links of %d nodes', edge_index.size(1),
                'directed' if directed else 'undirected', num_nodes)
    model = Infomap(two_level=True, directed=directed, silent=True,
                    num_trials=num_trials, seed=seed + 1,
                    markov_time=markov_time)
    if not directed:  # one link per pair: the larger weight of the two
        edge_index, edge_weight = coalesce(edge_index.sort(dim=0).values,
                                           edge_weight, num_nodes,
                                           reduce='max')
    _add_links(model, edge_index, edge_weight, num_nodes)
    modules = _partition(model)
    labels = np.full(num_nodes, -1, dtype=np.int64)
    labels[np.fromiter(modules.keys(), dtype=np.int64, count=len(modules))
           ] = np.fromiter(modules.values(), dtype=np.int64,
                           count=len(modules))
    del modules, model
    _return_freed_memory()
    return relabel_by_first_appearance(labels)
