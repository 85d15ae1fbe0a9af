r"""Report plots (matplotlib figures drawn without pyplot, so importing this
module leaves the caller's backend alone; PNG) and report directories.

:func:`write_report_dir` writes ``report.json`` and the plots a person would
rather look at than read:

* ``cluster_sizes.png``: how many clusters of each size were predicted, and
  how many identities of each size there are (log-log);
* ``threshold_sweep.png``: pairwise and BCubed precision, recall and F
  against the method's threshold (from
  :func:`~ltc_pyg.pipelines.estimator.threshold_sweep`);
* ``methods.png``: pairwise F, BCubed F and NMI of several methods.
"""
from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ltc_pyg.data.io import atomic_write
from ltc_pyg.pipelines.report import write_json

logger = logging.getLogger(__name__)

#: Metrics drawn per method by :func:`plot_method_bars`.
BAR_METRICS: dict[str, str] = {'pairwise_fscore': 'pairwise F',
                               'bcubed_fscore': 'BCubed F', 'nmi': 'NMI'}


def _save(figure: Figure, path: str | Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format='png', dpi=120, bbox_inches='tight')
    with atomic_write(path) as f:
        f.write(buffer.getbuffer())
    return Path(path)


def cluster_size_histogram(labels: np.ndarray) -> tuple[np.ndarray,
                                                        np.ndarray]:
    r"""Distinct cluster sizes and how many clusters have each.

    Returns:
        (np.ndarray, np.ndarray): ``sizes`` (increasing) and ``counts``.
    """
    sizes = np.unique(np.asarray(labels), return_counts=True)[1]
    return np.unique(sizes, return_counts=True)


def plot_cluster_sizes(path: str | Path, labels_pred: np.ndarray,
                       labels_true: np.ndarray | None = None,
                       title: str = 'Cluster sizes') -> Path:
    r"""Log-log plot of the number of clusters per size, predicted against
    true, in power-of-two size bins (1, 2-3, 4-7, ...)."""
    figure = Figure(figsize=(6.4, 4.4))
    axes = figure.subplots()
    series = [('predicted', labels_pred, 'tab:blue', 'o')]
    if labels_true is not None:
        series.append(('true identities', labels_true, 'tab:orange', 's'))
    largest = max(np.unique(labels, return_counts=True)[1].max()
                  for _, labels, _, _ in series)
    edges = 2.0**np.arange(int(np.log2(largest)) + 2)
    centers = np.sqrt(edges[:-1] * (edges[1:] - 1))
    for name, labels, color, marker in series:
        sizes, counts = cluster_size_histogram(labels)
        per_bin = np.histogram(sizes, bins=edges, weights=counts)[0]
        shown = per_bin > 0
        axes.loglog(centers[shown], per_bin[shown], marker=marker,
                    color=color, label=f'{name} ({int(counts.sum()):,} '
                    f'clusters)')
    axes.set_xlabel('cluster size (samples; bins 1, 2-3, 4-7, ...)')
    axes.set_ylabel('number of clusters')
    axes.set_title(title)
    axes.grid(True, which='major', alpha=0.3)
    axes.legend()
    return _save(figure, path)


def plot_threshold_sweep(path: str | Path, sweep: dict[str, Any],
                         chosen: float | None = None,
                         title: str = 'Threshold sweep') -> Path:
    r"""Pairwise and BCubed precision / recall / F against the threshold.

    Args:
        path (str): PNG to write.
        sweep (dict): ``{'param', 'values', 'metrics'}`` as returned by
            :func:`~ltc_pyg.pipelines.estimator.threshold_sweep`.
        chosen (float, optional): The value the run used (a vertical line).
    """
    values = np.asarray(sweep['values'])
    figure = Figure(figsize=(6.4, 4.4))
    axes = figure.subplots()
    for family, style in (('pairwise', '-'), ('bcubed', '--')):
        for part, color in (('precision', 'tab:blue'),
                            ('recall', 'tab:orange'),
                            ('fscore', 'tab:green')):
            key = f'{family}_{part}'
            ys = np.array([np.nan if m[key] is None else m[key]
                           for m in sweep['metrics']], dtype=float)
            label = (f"{'BCubed' if family == 'bcubed' else 'pairwise'} "
                     f"{'F' if part == 'fscore' else part}")
            axes.plot(values, ys, linestyle=style, marker='.', color=color,
                      label=label)
    if chosen is not None:
        axes.axvline(chosen, color='gray', linestyle=':',
                     label=f'used: {chosen:.3f}')
    axes.set_xlabel(f"{sweep['param']} (cosine similarity)")
    axes.set_ylabel('score')
    axes.set_ylim(0, 1.02)
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize='small', ncol=2)
    return _save(figure, path)


def plot_method_bars(path: str | Path, rows: list[dict[str, Any]],
                     title: str = 'Methods') -> Path:
    r"""Grouped bars of :data:`BAR_METRICS` per method.

    Args:
        path (str): PNG to write.
        rows (list of dict): One per method, each with ``'method'`` (its
            name) and the metric keys of
            :func:`~ltc_pyg.metrics.evaluate`.
    """
    if not rows:
        raise ValueError('plot_method_bars needs at least one row')
    names = [str(row['method']) for row in rows]
    positions = np.arange(len(rows))
    width = 0.8 / len(BAR_METRICS)
    figure = Figure(figsize=(max(6.4, 1.3 * len(rows) + 2), 4.4))
    axes = figure.subplots()
    for i, (key, label) in enumerate(BAR_METRICS.items()):
        heights = [np.nan if row.get(key) is None else row[key]
                   for row in rows]
        bars = axes.bar(positions + (i - (len(BAR_METRICS) - 1) / 2) * width,
                        heights, width, label=label)
        axes.bar_label(bars, fmt='%.3f', fontsize='x-small', padding=1)
    axes.set_xticks(positions, names, rotation=20 if len(rows) > 4 else 0,
                    ha='right' if len(rows) > 4 else 'center')
    axes.set_ylabel('score')
    axes.set_ylim(0, 1.18)
    axes.set_title(title)
    axes.legend(loc='upper center', ncol=len(BAR_METRICS), fontsize='small')
    axes.grid(True, axis='y', alpha=0.3)
    return _save(figure, path)


def write_report_dir(directory: str | Path, report: dict[str, Any],
                     labels_pred: np.ndarray,
                     labels_true: np.ndarray | None = None,
                     sweep: dict[str, Any] | None = None,
                     methods: list[dict[str, Any]] | None = None
                     ) -> dict[str, Path]:
    r"""Writes ``report.json`` and the plots into ``directory``.

    Args:
        directory (str): Created if missing.
        report (dict): A run's report
            (:attr:`~ltc_pyg.pipelines.run.ClusterResult.report`); ``sweep``
            is stored in it as ``'threshold_sweep'``.
        labels_pred (np.ndarray): ``[N]`` predicted labels.
        labels_true (np.ndarray, optional): ``[N]`` true labels.
        sweep (dict, optional): A threshold sweep (``threshold_sweep.png``).
        methods (list of dict, optional): Rows for ``methods.png``.

    Returns:
        dict: What was written, by name (``'report'``, ``'cluster_sizes'``,
        ``'threshold_sweep'``, ``'methods'``).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    labels_pred = np.asarray(labels_pred)
    if labels_true is not None and len(labels_true) != len(labels_pred):
        raise ValueError(f'{len(labels_true)} true labels for '
                         f'{len(labels_pred)} predicted ones')
    method = report.get('method', 'method')
    written = {'cluster_sizes': plot_cluster_sizes(
        directory / 'cluster_sizes.png', labels_pred, labels_true,
        title=f'Cluster sizes: {method}')}
    if sweep is not None:
        report = {**report, 'threshold_sweep': sweep}
        params = report.get('params') or {}
        chosen = params.get(f"{sweep['param']}_used", params.get(
            sweep['param']))
        written['threshold_sweep'] = plot_threshold_sweep(
            directory / 'threshold_sweep.png', sweep, chosen,
            title=f"{method}: scores against {sweep['param']}")
    if methods:
        written['methods'] = plot_method_bars(directory / 'methods.png',
                                              methods)
    write_json(directory / 'report.json', report)
    written['report'] = directory / 'report.json'
    logger.info('Wrote report to %s (%s)', directory,
                ', '.join(sorted(p.name for p in written.values())))
    return written
