r"""Neighbour-based edge probabilities and early stopping on the kNN rows,
from "Face Clustering via Early Stopping and Edge Recall" (`Liu et al., 2024
<https://arxiv.org/abs/2408.13431>`_), as functions on the dense ``[N, k]``
kNN arrays and as PyG transforms on the affinity graph.

Node :math:`i`'s kNN row :math:`\mathcal{N}(i)` (itself first) becomes a
distribution over its neighbours,
:math:`P_{im} = \mathrm{softmax}_{m \in \mathcal{N}(i)}(-d_{im} / T)` with
:math:`d = 1 - s` the cosine distance, and the neighbour-based edge
probability (NEP) of a kNN edge is the mass both rows put on their shared
neighbours,

.. math::
    \mathrm{NEP}(i, j) = \frac{1}{2} \sum_{m \in \mathcal{N}(i) \cap
    \mathcal{N}(j)} \left(P_{im} + P_{jm}\right).

The paper's temperature :math:`T = 0.5` is in MS1M's distance units; here
the default reads the scale from the data (:func:`default_temperature`),
so that the same default serves embeddings whose similarities live on
different scales (ArcFace-style ~0.3-0.9, dlib ~0.9-0.98).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

#: Default temperature as a fraction of the mean kNN distance
#: (:func:`default_temperature`).
TEMPERATURE_SCALE = 0.75

#: Bytes of the dense ``[rows, N]`` lookup table of one chunk of
#: :func:`shared_neighbors`.
CHUNK_BYTES = 1 << 28


def mean_knn_distance(similarity: Tensor) -> float:
    r"""The mean cosine distance :math:`1 - s` of every node to its ``k - 1``
    nearest other nodes (column 0, the node itself, left out): the scale of
    the embedding's neighbourhoods."""
    if similarity.size(1) < 2:
        raise ValueError(f'Need at least one neighbour per row (got '
                         f'k={similarity.size(1)})')
    return float((1.0 - similarity[:, 1:].double()).mean())


def default_temperature(similarity: Tensor) -> float:
    r"""The softmax temperature read from the data,
    :math:`T = 0.75 \cdot \bar{d}` with :math:`\bar{d}` the
    :func:`mean_knn_distance` (no labels used). On MS1M-like features
    (:math:`\bar{d} \approx 0.55`) it is close to the paper's
    :math:`T = 0.5`; on dlib features (:math:`\bar{d} \approx 0.08`) the
    paper's value would make every row uniform."""
    return TEMPERATURE_SCALE * mean_knn_distance(similarity)


def neighbor_probability(similarity: Tensor, temperature: float) -> Tensor:
    r"""The row distributions :math:`P_{im} = \mathrm{softmax}_m
    (-(1 - s_{im}) / T)` over each kNN row (itself included).

    Shapes:
        - **input:** ``similarity`` :math:`(N, k)`
        - **output:** :math:`(N, k)`, rows summing to :math:`1`
    """
    if not temperature > 0:
        raise ValueError(f'temperature must be positive (got {temperature})')
    return torch.softmax(-(1.0 - similarity.float()) / temperature, dim=1)


class SharedNeighbors(NamedTuple):
    r"""What two kNN rows share, for every kNN edge ``(i, neighbor[i, c])``
    (all ``[N, k]``; column 0 is the node with itself)."""
    #: :math:`\mathrm{NEP}(i, j)`.
    probability: Tensor
    #: :math:`|\mathcal{N}(i) \cap \mathcal{N}(j)|` (:obj:`None` when not
    #: asked for).
    count: Tensor | None
    #: The column of :math:`i` in :math:`j`'s row, :math:`k` when absent
    #: (:obj:`None` when not asked for).
    reciprocal_rank: Tensor | None


def shared_neighbors(neighbor: Tensor, probability: Tensor,
                     chunk_size: int | None = None,
                     counts: bool = True) -> SharedNeighbors:
    r"""NEP, shared-neighbour counts and reciprocal ranks of every kNN edge,
    in one vectorised pass.

    Rows are processed in chunks of :math:`C`: the chunk's distributions are
    scattered into a dense :math:`C \times N` table, and for each edge
    ``(i, j)`` the table is read at :math:`j`'s :math:`k` neighbours, so
    that membership in :math:`\mathcal{N}(i)` and :math:`P_{im}` come from
    one gather. Work is :math:`O(N k^2)`, memory :math:`O(C N + C k^2)`
    (:data:`CHUNK_BYTES` by default).

    Args:
        neighbor (Tensor): ``[N, k]`` neighbour ids, itself first.
        probability (Tensor): ``[N, k]`` row distributions
            (:func:`neighbor_probability`).
        chunk_size (int, optional): Rows per chunk :math:`C`.
        counts (bool, optional): Also count the shared neighbours and find
            the reciprocal ranks; without them NEP alone takes ~80% of the
            time (100K nodes, one thread). (default: :obj:`True`)
    """
    num_nodes, k = neighbor.shape
    if probability.shape != neighbor.shape:
        raise ValueError(f"'probability' must have the shape of 'neighbor' "
                         f'{tuple(neighbor.shape)} (got '
                         f'{tuple(probability.shape)})')
    if chunk_size is None:
        chunk_size = max(1, min(num_nodes, CHUNK_BYTES // (4 * num_nodes)))
    if chunk_size * num_nodes >= 2**31:
        raise ValueError(f'chunk_size={chunk_size} x {num_nodes} nodes '
                         f'overflows the int32 table index')
    # int32 ids: the [C, k, k] gathers move half the bytes, and
    # index_select takes them as they are.
    ids = neighbor.int()
    probability = probability.float()
    nep = torch.empty(num_nodes, k)
    count = torch.empty(num_nodes, k, dtype=torch.long) if counts else None
    reciprocal = (torch.empty(num_nodes, k, dtype=torch.long) if counts
                  else None)
    table = torch.zeros(chunk_size * num_nodes)  # [C, N], flat
    for start in range(0, num_nodes, chunk_size):
        stop = min(num_nodes, start + chunk_size)
        rows = stop - start
        row_neighbor = ids[start:stop].reshape(-1)               # [C k]
        base = torch.arange(0, rows * num_nodes, num_nodes,
                            dtype=torch.int32).view(-1, 1)
        slots = (base + ids[start:stop]).view(-1)
        table[slots] = probability[start:stop].reshape(-1)
        their_neighbor = ids.index_select(0, row_neighbor).view(rows, k, k)
        mine = table.index_select(
            0, (their_neighbor + base.view(-1, 1, 1)).view(-1)
        ).view(rows, k, k)                                       # P_im or 0
        shared = mine > 0
        theirs = probability.index_select(0, row_neighbor).view(
            rows, k, k).masked_fill_(~shared, 0.0)               # P_jm
        nep[start:stop] = 0.5 * (mine.sum(dim=2) + theirs.sum(dim=2))
        table[slots] = 0.0
        if not counts:
            continue
        count[start:stop] = shared.sum(dim=2, dtype=torch.int32)
        # The first column of j's row that holds i (argmax finds the first
        # True, and 0 when there is none); column 0 is j itself.
        me = torch.arange(start, stop, dtype=torch.int32).view(-1, 1)
        first = (their_neighbor == me.view(-1, 1, 1)).view(
            torch.uint8).argmax(dim=2)
        first.masked_fill_((first == 0) & (ids[start:stop] != me), k)
        reciprocal[start:stop] = first
    return SharedNeighbors(nep, count, reciprocal)


def neighbor_edge_probability(neighbor: Tensor, similarity: Tensor,
                              temperature: float | None = None) -> Tensor:
    r"""NEP of every kNN edge, ``[N, k]`` (see the module's docstring).

    Args:
        neighbor (Tensor): ``[N, k]`` neighbour ids, itself first.
        similarity (Tensor): ``[N, k]`` cosine similarities.
        temperature (float, optional): :math:`T` (default:
            :func:`default_temperature`).
    """
    if temperature is None:
        temperature = default_temperature(similarity)
    probability = neighbor_probability(similarity, temperature)
    return shared_neighbors(neighbor, probability, counts=False).probability


#: The kNN edge features :func:`knn_edge_features` can compute.
EDGE_FEATURES: tuple[str, ...] = ('similarity', 'nep', 'shared', 'rank',
                                  'reciprocal_rank')


def knn_edge_features(neighbor: Tensor, similarity: Tensor,
                      temperature: float,
                      names: tuple[str, ...] = EDGE_FEATURES) -> Tensor:
    r"""Features of every kNN slot ``(i, c)``, the edge
    ``neighbor[i, c] -> i``, in the order of ``names``:

    * ``'similarity'``: the cosine :math:`s_{ij}`;
    * ``'nep'``: :math:`\mathrm{NEP}(i, j)` at temperature :math:`T`;
    * ``'shared'``: :math:`|\mathcal{N}(i) \cap \mathcal{N}(j)| / k`;
    * ``'rank'``: :math:`c / k`, the position of :math:`j` in :math:`i`'s
      row;
    * ``'reciprocal_rank'``: the position of :math:`i` in :math:`j`'s row
      over :math:`k` (:math:`1` when absent).

    Shapes:
        - **input:** ``neighbor``, ``similarity`` :math:`(N, k)`
        - **output:** :math:`(N, k, F)`, :math:`F` = ``len(names)``
    """
    unknown = sorted(set(names) - set(EDGE_FEATURES))
    if unknown or not names:
        raise ValueError(f'Unknown edge features {unknown} (expected a '
                         f'non-empty subset of {list(EDGE_FEATURES)})')
    num_nodes, k = neighbor.shape
    columns = {'similarity': similarity.float(),
               'rank': (torch.arange(k) / k).expand(num_nodes, k)}
    if {'nep', 'shared', 'reciprocal_rank'} & set(names):
        shared = shared_neighbors(
            neighbor, neighbor_probability(similarity, temperature))
        columns.update(nep=shared.probability, shared=shared.count / k,
                       reciprocal_rank=shared.reciprocal_rank / k)
    return torch.stack([columns[name] for name in names], dim=2)


def early_stop(score: Tensor, threshold: float) -> Tensor:
    r"""Per-row early stopping: along each kNN row (in its similarity
    order, column 0 left out), keep neighbours while
    ``score >= threshold`` and drop every one after the first below.

    Shapes:
        - **input:** ``score`` :math:`(N, k)`
        - **output:** bool :math:`(N, k)`, :obj:`False` in column 0
    """
    passing = score[:, 1:] >= threshold
    kept = torch.cumprod(passing.to(torch.uint8), dim=1).bool()
    return torch.cat([torch.zeros_like(kept[:, :1]), kept], dim=1)


def kept_links(neighbor: Tensor, keep: Tensor) -> Tensor:
    r"""The kept kNN slots as links ``i -> neighbor[i, c]`` (``[2, E]``, the
    direction a random walker takes them; row-major order)."""
    row, column = keep.nonzero(as_tuple=True)
    return torch.stack([row, neighbor[row, column].long()])


class NeighborEdgeProbability(BaseTransform):
    r"""Adds ``knn_nep`` (``[N, k]``, :func:`neighbor_edge_probability`) to
    an affinity graph with ``knn_neighbor`` / ``knn_similarity``.

    Args:
        temperature (float, optional): :math:`T`; read from the data when
            omitted (:func:`default_temperature`).
    """
    def __init__(self, temperature: float | None = None) -> None:
        if temperature is not None and not temperature > 0:
            raise ValueError(f'temperature must be positive (got '
                             f'{temperature})')
        self.temperature = temperature

    def forward(self, data: Data) -> Data:
        data.knn_nep = neighbor_edge_probability(
            data.knn_neighbor, data.knn_similarity, self.temperature)
        return data

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(temperature={self.temperature})'


class EarlyStop(BaseTransform):
    r"""Keeps, per kNN row, the neighbours before the first whose score
    falls below ``threshold`` (:func:`early_stop`), as PyG edges
    ``j -> i`` (``edge_index``) with the score as ``edge_weight``.

    Args:
        threshold (float): :math:`\theta`.
        score (str, optional): The ``[N, k]`` attribute scored.
            (default: ``'knn_nep'``)
    """
    def __init__(self, threshold: float, score: str = 'knn_nep') -> None:
        self.threshold = threshold
        self.score = score

    def forward(self, data: Data) -> Data:
        score = data[self.score]
        keep = early_stop(score, self.threshold)
        data.edge_index = kept_links(data.knn_neighbor, keep).flip(0)
        data.edge_weight = score[keep]
        return data

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(threshold={self.threshold}, '
                f'score={self.score!r})')
