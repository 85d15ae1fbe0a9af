r"""Clustering metrics: pairwise F, BCubed F and NMI."""
from __future__ import annotations

import numpy as np

from ltc_pyg.metrics.bcubed import bcubed, bcubed_from_table
from ltc_pyg.metrics.contingency import Contingency, contingency
from ltc_pyg.metrics.nmi import nmi, nmi_from_table
from ltc_pyg.metrics.pairwise import PRF, pairwise, pairwise_from_table

METRIC_KEYS: tuple[str, ...] = (
    'pairwise_precision', 'pairwise_recall', 'pairwise_fscore',
    'bcubed_precision', 'bcubed_recall', 'bcubed_fscore', 'nmi')


def evaluate(labels_true: np.ndarray,
             labels_pred: np.ndarray) -> dict[str, float]:
    r"""All metrics at once, under the keys of :data:`METRIC_KEYS` (the keys
    of ``ltc-pyg evaluate --json`` and of every report). Undefined values
    are NaN."""
    table = contingency(labels_true, labels_pred)
    values = (*pairwise_from_table(table), *bcubed_from_table(table),
              nmi_from_table(table))
    return dict(zip(METRIC_KEYS, map(float, values), strict=True))


def evaluate_known(labels_true: np.ndarray, labels_pred: np.ndarray
                   ) -> tuple[dict[str, float], int]:
    r""":func:`evaluate` on the samples whose true label is known: rows
    with ``labels_true == -1`` (unknown, as in the ``.meta`` layout) are left
    out rather than scored as one identity.

    Returns:
        tuple: The metrics (all NaN when no label is known) and the number of
        rows left out.
    """
    labels_true, labels_pred = np.asarray(labels_true), np.asarray(labels_pred)
    known = labels_true != -1
    num_unknown = int(known.size - known.sum())
    if not known.any():
        return dict.fromkeys(METRIC_KEYS, float('nan')), num_unknown
    return evaluate(labels_true[known], labels_pred[known]), num_unknown


__all__ = [
    'Contingency', 'contingency', 'PRF', 'pairwise', 'bcubed', 'nmi',
    'evaluate', 'evaluate_known', 'METRIC_KEYS',
]
