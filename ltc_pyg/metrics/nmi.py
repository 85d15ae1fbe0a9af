r"""Normalised mutual information with arithmetic normalisation."""
from __future__ import annotations

import numpy as np

from ltc_pyg.metrics.contingency import Contingency, contingency


def _entropy(sizes: np.ndarray, num_samples: int) -> float:
    p = sizes.astype(np.float64) / num_samples
    return float(-np.sum(p * np.log(p)))


def nmi(labels_true: np.ndarray, labels_pred: np.ndarray) -> float:
    r"""Normalised mutual information,

    .. math::
        \text{NMI} = \frac{I(T; P)}{(H(T) + H(P)) / 2},

    the ``average_method='arithmetic'`` of scikit-learn (its default since
    0.22). Two single-cluster labelings score 1, as in scikit-learn.
    """
    return nmi_from_table(contingency(labels_true, labels_pred))


def nmi_from_table(table: Contingency) -> float:
    r""":func:`nmi` of a prebuilt contingency table."""
    n = table.num_samples
    num_true, num_pred = table.true_size.size, table.pred_size.size
    if num_true == num_pred == 1:
        return 1.0
    count = table.cell_count.astype(np.float64)
    outer = (table.true_size[table.cell_true].astype(np.float64)
             * table.pred_size[table.cell_pred])
    mutual_information = float(np.sum(count / n * (np.log(count * n)
                                                   - np.log(outer))))
    mutual_information = max(mutual_information, 0.0)
    normalizer = (_entropy(table.true_size, n)
                  + _entropy(table.pred_size, n)) / 2
    if mutual_information == 0.0 or normalizer == 0.0:
        return 0.0
    return mutual_information / max(normalizer, np.finfo(np.float64).eps)
