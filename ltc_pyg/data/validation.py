r"""Input checks shared by readers, transforms, models and the CLI.

Every check raises :class:`ValueError` (or :class:`TypeError`) with a message
that says what was expected, what arrived and, when the data came from a file,
which file. The CLI turns these into a one-line message and exit code 2.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

ArrayLike = np.ndarray | Tensor

# Rows are scanned in blocks so that checking a memory-mapped 584K x 256 file
# never loads more than ~64 MB at once.
_CHECK_BLOCK_ROWS = 65536


def _where(source: str | None) -> str:
    return f' in {source}' if source else ''


def check_features(x: ArrayLike, num_features: int | None = None,
                   source: str | None = None,
                   allow_zero_rows: bool = False) -> None:
    r"""Checks a feature matrix of shape ``[num_nodes, num_features]``.

    Rejects wrong ranks, an empty matrix, a feature count other than
    ``num_features``, rows with NaN/Inf and (unless ``allow_zero_rows``) rows
    of zero norm, which have no direction and cannot be L2-normalised.

    Args:
        x (np.ndarray or Tensor): Features, possibly memory-mapped.
        num_features (int, optional): Expected number of columns.
        source (str, optional): File the features came from, for messages.
        allow_zero_rows (bool, optional): Accept all-zero rows.
            (default: :obj:`False`)
    """
    where = _where(source)
    if x is None or x.ndim != 2:
        shape = None if x is None else tuple(x.shape)
        raise ValueError(f"Expected features of shape [num_nodes, num_features]"
                         f"{where} (got {shape})")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f'Features{where} are empty (shape {tuple(x.shape)})')
    if num_features is not None and x.shape[1] != num_features:
        raise ValueError(f'Expected {num_features} features per node{where} '
                         f'(got {x.shape[1]}); was the model trained on '
                         f'another embedding?')
    bad_rows: list[int] = []
    zero_rows: list[int] = []
    num_bad = num_zero = 0
    for start in range(0, x.shape[0], _CHECK_BLOCK_ROWS):
        block = x[start:start + _CHECK_BLOCK_ROWS]
        block = (block.detach().cpu().numpy() if isinstance(block, Tensor)
                 else np.asarray(block))
        finite = np.isfinite(block).all(axis=1)
        bad = np.flatnonzero(~finite)
        num_bad += bad.size
        bad_rows.extend((bad[:5] + start).tolist())
        if not allow_zero_rows:
            zero = np.flatnonzero(finite & ~block.any(axis=1))
            num_zero += zero.size
            zero_rows.extend((zero[:5] + start).tolist())
    if num_bad:
        raise ValueError(f'Features{where} have NaN/Inf in {num_bad} of '
                         f'{x.shape[0]} rows (first: {bad_rows[:5]})')
    if num_zero:
        raise ValueError(f'Features{where} have {num_zero} zero-norm rows of '
                         f'{x.shape[0]} (first: {zero_rows[:5]}); they cannot '
                         f'be L2-normalised')


def check_labels(labels: ArrayLike, num_nodes: int | None = None,
                 source: str | None = None) -> None:
    r"""Checks a label vector: 1-D, integer, one entry per node.

    ``-1`` marks an unknown label and is allowed.

    Args:
        labels (np.ndarray or Tensor): Labels of shape ``[num_nodes]``.
        num_nodes (int, optional): Expected length.
        source (str, optional): File the labels came from, for messages.
    """
    where = _where(source)
    if labels.ndim != 1:
        raise ValueError(f'Expected labels of shape [num_nodes]{where} '
                         f'(got {tuple(labels.shape)})')
    is_integer = (not labels.dtype.is_floating_point
                  and labels.dtype != torch.bool) if isinstance(
                      labels, Tensor) else np.issubdtype(labels.dtype,
                                                         np.integer)
    if not is_integer:
        raise TypeError(f'Expected integer labels{where} '
                        f'(got dtype {labels.dtype})')
    if num_nodes is not None and labels.shape[0] != num_nodes:
        raise ValueError(f'Got {labels.shape[0]} labels{where} for '
                         f'{num_nodes} nodes')


def check_knn(neighbor: ArrayLike, similarity: ArrayLike,
              num_nodes: int | None = None, k: int | None = None,
              source: str | None = None) -> None:
    r"""Checks dense kNN arrays ``neighbor`` and ``similarity``, both
    ``[num_nodes, k]``.

    Args:
        neighbor (np.ndarray or Tensor): Neighbour ids per row.
        similarity (np.ndarray or Tensor): Cosine similarities per row.
        num_nodes (int, optional): Expected number of rows.
        k (int, optional): Expected number of neighbours per row.
        source (str, optional): File the arrays came from, for messages.
    """
    where = _where(source)
    if neighbor.ndim != 2 or tuple(neighbor.shape) != tuple(similarity.shape):
        raise ValueError(f'Expected kNN ids and similarities of the same shape '
                         f'[num_nodes, k]{where} (got {tuple(neighbor.shape)} '
                         f'and {tuple(similarity.shape)})')
    rows, cols = neighbor.shape
    if num_nodes is not None and rows != num_nodes:
        raise ValueError(f'kNN{where} has {rows} rows but the features have '
                         f'{num_nodes} nodes; was it built for other features?')
    if k is not None and cols != k:
        raise ValueError(f'kNN{where} has k={cols} but k={k} was asked for')
    if rows == 0:
        raise ValueError(f'kNN{where} is empty')
    low, high = int(neighbor.min()), int(neighbor.max())
    if low < 0 or high >= rows:
        raise ValueError(f'kNN{where} has neighbour ids in [{low}, {high}], '
                         f'outside [0, {rows - 1}]')


# Cosine distances of float32 unit vectors stray this far outside [0, 2].
_DISTANCE_TOLERANCE = 1e-3
# Rows whose node is crowded out by exact duplicates, at most (a fraction).
_MAX_ROWS_WITHOUT_SELF = 0.01


def check_knn_distances(neighbor: np.ndarray, distance: np.ndarray,
                        source: str | None = None) -> None:
    r"""Checks the content of a kNN file's cosine distances
    :math:`d_{ij} = 1 - \cos(x_i, x_j)`, ``[num_nodes, k]`` each.

    Rejects NaN/Inf, distances outside :math:`[0, 2]` (up to float32
    rounding), rows that do not start at distance ~0 (the node itself, the
    convention of ``faiss_k_<k>.npz`` files, or an exact duplicate of it)
    and more than 1% of rows without the node itself (exact duplicates may
    crowd a few out; more mean ids of other features). When column 0 sits at
    distance ~1 or rows grow more similar to the right, the message asks
    whether similarities were stored instead of distances.

    Args:
        neighbor (np.ndarray): Neighbour ids, int64 ``[num_nodes, k]``.
        distance (np.ndarray): Cosine distances ``[num_nodes, k]``.
        source (str, optional): File the arrays came from, for messages.
    """
    where = _where(source)
    finite = np.isfinite(distance).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(f'kNN{where} has NaN/Inf distances in {bad.size} of '
                         f'{distance.shape[0]} rows (first: '
                         f'{bad[:5].tolist()})')
    first = float(np.median(distance[:, 0]))
    low, high = float(distance.min()), float(distance.max())
    hint = ''
    if high <= 1 + _DISTANCE_TOLERANCE and (
            first > 0.5 or (distance[:, 0] > distance[:, -1]).mean() > 0.5):
        hint = (f'; column 0 (the node itself) has median distance '
                f'{first:.3f}, not ~0: was the file written as similarities '
                f'instead of cosine distances (1 - similarity)?')
    if low < -_DISTANCE_TOLERANCE or high > 2 + _DISTANCE_TOLERANCE:
        raise ValueError(f'kNN{where} has distances in [{low:.4g}, '
                         f'{high:.4g}], outside [0, 2] of cosine distances'
                         f'{hint}')
    num_rows = neighbor.shape[0]
    far = np.flatnonzero(np.abs(distance[:, 0]) > _DISTANCE_TOLERANCE)
    if far.size:
        row = int(far[0])
        raise ValueError(
            f'kNN{where}: {far.size} of {num_rows} rows do not start with the '
            f'node itself at distance ~0 (row {row} starts with node '
            f'{int(neighbor[row, 0])} at distance '
            f'{float(distance[row, 0]):.4g}){hint}')
    # Column 0 is at distance ~0: the node itself, or an exact duplicate of
    # it, which may even push it out of its row; a few such rows are
    # duplicates, many mean ids of other features or another order.
    absent = np.flatnonzero(
        ~(neighbor == np.arange(num_rows)[:, None]).any(axis=1))
    if absent.size > _MAX_ROWS_WITHOUT_SELF * num_rows:
        row = int(absent[0])
        raise ValueError(
            f'kNN{where}: {absent.size} of {num_rows} rows do not contain the '
            f'node itself (row {row} starts with node '
            f'{int(neighbor[row, 0])}); was it built for other features or '
            f'another order?')


def check_k(k: int, num_nodes: int, source: str | None = None) -> None:
    r"""Checks that ``1 <= k <= num_nodes`` (``k`` counts the node itself,
    as in the original ``faiss_k_<k>.npz`` files)."""
    if k < 1:
        raise ValueError(f"'k' must be at least 1 (got {k})")
    if k > num_nodes:
        raise ValueError(f'k={k} neighbours (the node itself included) were '
                         f'asked for, but there are only {num_nodes} nodes'
                         f'{_where(source)}')
