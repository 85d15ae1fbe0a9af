r"""BCubed precision, recall and F-score (as in the original evaluation)."""
from __future__ import annotations

import numpy as np

from ltc_pyg.metrics.contingency import Contingency, contingency, fscore
from ltc_pyg.metrics.pairwise import PRF


def bcubed(labels_true: np.ndarray, labels_pred: np.ndarray) -> PRF:
    r"""BCubed precision/recall/F: per-sample precision and recall averaged
    over the samples.

    A sample in cell :math:`(t, p)` has precision :math:`n_{tp} / n_p` and
    recall :math:`n_{tp} / n_t`, so

    .. math::
        P = \frac{1}{N} \sum_{t,p} \frac{n_{tp}^2}{n_p}, \quad
        R = \frac{1}{N} \sum_{t,p} \frac{n_{tp}^2}{n_t}.
    """
    return bcubed_from_table(contingency(labels_true, labels_pred))


def bcubed_from_table(table: Contingency) -> PRF:
    r""":func:`bcubed` of a prebuilt contingency table."""
    count = table.cell_count.astype(np.float64)
    precision = float(np.sum(count**2 / table.pred_size[table.cell_pred])
                      / table.num_samples)
    recall = float(np.sum(count**2 / table.true_size[table.cell_true])
                   / table.num_samples)
    return PRF(precision, recall, fscore(precision, recall))
