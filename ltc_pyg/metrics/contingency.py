r"""The contingency table shared by every clustering metric."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ltc_pyg.data.validation import check_labels


class Contingency(NamedTuple):
    r"""Sparse contingency table of two labelings of the same ``N`` samples.

    Attributes:
        cell_count (np.ndarray): :math:`n_{tp}`, samples per non-empty
            (true, predicted) cell, ``[num_cells]``.
        cell_true (np.ndarray): True-cluster index of each cell.
        cell_pred (np.ndarray): Predicted-cluster index of each cell.
        true_size (np.ndarray): :math:`n_t`, samples per true cluster.
        pred_size (np.ndarray): :math:`n_p`, samples per predicted cluster.
        num_samples (int): ``N``.
    """
    cell_count: np.ndarray
    cell_true: np.ndarray
    cell_pred: np.ndarray
    true_size: np.ndarray
    pred_size: np.ndarray
    num_samples: int


def _as_label_array(labels: object, name: str) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"Expected '{name}' of shape [num_samples] "
                         f'(got {array.shape})')
    if array.dtype.kind == 'f':
        if not np.isfinite(array).all():
            raise ValueError(f"'{name}' contains NaN/Inf")
        if not np.array_equal(array, np.round(array)):
            raise ValueError(f"'{name}' contains non-integer values")
        array = array.astype(np.int64)
    check_labels(array)
    return array


def contingency(labels_true: np.ndarray,
                labels_pred: np.ndarray) -> Contingency:
    r"""Builds the sparse contingency table in :math:`O(N \log N)`.

    Labels may be any integers (negative, gapped) or integral floats; every
    distinct value is one cluster (``-1`` included, as in the original
    evaluation).
    """
    labels_true = _as_label_array(labels_true, 'labels_true')
    labels_pred = _as_label_array(labels_pred, 'labels_pred')
    if labels_true.shape != labels_pred.shape:
        raise ValueError(f'Got {labels_true.size} true labels but '
                         f'{labels_pred.size} predicted labels')
    if labels_true.size == 0:
        raise ValueError('Cannot evaluate an empty labeling')
    _, true_index = np.unique(labels_true, return_inverse=True)
    _, pred_index = np.unique(labels_pred, return_inverse=True)
    num_pred = int(pred_index.max()) + 1
    cells, cell_count = np.unique(true_index * num_pred + pred_index,
                                  return_counts=True)
    return Contingency(cell_count=cell_count, cell_true=cells // num_pred,
                       cell_pred=cells % num_pred,
                       true_size=np.bincount(true_index),
                       pred_size=np.bincount(pred_index),
                       num_samples=labels_true.size)


def fscore(precision: float, recall: float) -> float:
    r"""Harmonic mean :math:`2PR / (P + R)`; NaN when undefined."""
    with np.errstate(invalid='ignore', divide='ignore'):
        return float(np.float64(2 * precision * recall) /
                     np.float64(precision + recall))
