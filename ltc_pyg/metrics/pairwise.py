r"""Pairwise precision, recall and F-score (as in the original evaluation)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ltc_pyg.metrics.contingency import Contingency, contingency, fscore


class PRF(NamedTuple):
    r"""Precision, recall and F-score."""
    precision: float
    recall: float
    fscore: float


def pairwise(labels_true: np.ndarray, labels_pred: np.ndarray) -> PRF:
    r"""Pairwise precision/recall/F over ordered pairs :math:`i \neq j`.

    With :math:`n_{tp}` the contingency counts and :math:`N` samples,

    .. math::
        T = \sum_{t,p} n_{tp}^2 - N, \quad
        P_{\text{pairs}} = \sum_p n_p^2 - N, \quad
        Q_{\text{pairs}} = \sum_t n_t^2 - N,

    precision :math:`= T / P_{\text{pairs}}`, recall :math:`= T /
    Q_{\text{pairs}}`. Undefined ratios (e.g. precision when every predicted
    cluster is a singleton) are NaN.
    """
    return pairwise_from_table(contingency(labels_true, labels_pred))


def pairwise_from_table(table: Contingency) -> PRF:
    r""":func:`pairwise` of a prebuilt contingency table."""
    n = table.num_samples
    together = float(np.sum(table.cell_count.astype(np.float64) ** 2)) - n
    pred_pairs = float(np.sum(table.pred_size.astype(np.float64) ** 2)) - n
    true_pairs = float(np.sum(table.true_size.astype(np.float64) ** 2)) - n
    with np.errstate(invalid='ignore', divide='ignore'):
        precision = float(np.float64(together) / np.float64(pred_pairs))
        recall = float(np.float64(together) / np.float64(true_pairs))
    return PRF(precision, recall, fscore(precision, recall))
