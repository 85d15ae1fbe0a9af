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


def check_k(k: int, num_nodes: int, source: str | None = None) -> None:
    r"""Checks that ``1 <= k <= num_nodes`` (``k`` counts the node itself,
    as in the original ``faiss_k_<k>.npz`` files)."""
    if k < 1:
        raise ValueError(f"'k' must be at least 1 (got {k})")
    if k > num_nodes:
        raise ValueError(f'k={k} neighbours (the node itself included) were '
                         f'asked for, but there are only {num_nodes} nodes'
                         f'{_where(source)}')
