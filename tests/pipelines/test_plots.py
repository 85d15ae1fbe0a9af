import json

import numpy as np
import pytest
from matplotlib.image import imread

from ltc_pyg.metrics import evaluate
from ltc_pyg.pipelines.plots import (
    cluster_size_histogram,
    plot_cluster_sizes,
    plot_method_bars,
    plot_threshold_sweep,
    write_report_dir,
)

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
TRUE = np.array([0, 0, 0, 1, 1, 2])
PRED = np.array([0, 0, 1, 2, 2, 3])


def assert_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    height, width = imread(path).shape[:2]
    assert height > 200 and width > 300


def sweep():
    return {'param': 'threshold', 'values': [0.5, 0.99],
            'metrics': [evaluate(TRUE, TRUE), evaluate(TRUE, PRED)]}


def test_cluster_size_histogram():
    # Cluster sizes 2, 1, 3, 1: one cluster each of 2 and 3, two of 1.
    sizes, counts = cluster_size_histogram(np.array([0, 0, 1, 2, 2, 2, 3]))
    assert sizes.tolist() == [1, 2, 3] and counts.tolist() == [2, 1, 1]


def test_plots_are_pngs(tmp_path):
    assert_png(plot_cluster_sizes(tmp_path / 'a.png', PRED, TRUE))
    assert_png(plot_cluster_sizes(tmp_path / 'b.png', PRED))
    assert_png(plot_threshold_sweep(tmp_path / 'c.png', sweep(), 0.7))
    rows = [{'method': 'x', **evaluate(TRUE, PRED)},
            {'method': 'y', 'pairwise_fscore': None, 'bcubed_fscore': 0.5,
             'nmi': 0.25}]
    assert_png(plot_method_bars(tmp_path / 'd.png', rows))


def test_sweep_plot_accepts_json_nulls(tmp_path):
    # All singletons: pairwise precision is undefined (null in JSON).
    values = sweep()
    values['metrics'][1] = json.loads(json.dumps(
        {**evaluate(TRUE, np.arange(6)), 'pairwise_precision': None}))
    assert_png(plot_threshold_sweep(tmp_path / 's.png', values))


def test_write_report_dir(tmp_path):
    report = {'method': 'knn-threshold', 'metrics': evaluate(TRUE, PRED),
              'params': {'threshold': None, 'threshold_used': 0.99}}
    rows = [{'method': 'knn-threshold', **report['metrics']}]
    written = write_report_dir(tmp_path / 'out', report, PRED, TRUE,
                               sweep=sweep(), methods=rows)
    assert sorted(written) == ['cluster_sizes', 'methods', 'report',
                               'threshold_sweep']
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == [
        'cluster_sizes.png', 'methods.png', 'report.json',
        'threshold_sweep.png']
    stored = json.loads((tmp_path / 'out' / 'report.json').read_text())
    assert stored['threshold_sweep']['values'] == [0.5, 0.99]
    assert stored['metrics']['pairwise_recall'] == 0.5
    assert 'threshold_sweep' not in report  # the input is not modified
    for name in ('cluster_sizes', 'methods', 'threshold_sweep'):
        assert_png(written[name])


def test_write_report_dir_minimal_and_errors(tmp_path):
    written = write_report_dir(tmp_path, {'method': 'm', 'metrics': None},
                               PRED)
    assert sorted(written) == ['cluster_sizes', 'report']
    with pytest.raises(ValueError, match='5 true labels for 6 predicted'):
        write_report_dir(tmp_path, {}, PRED, TRUE[:5])
    with pytest.raises(ValueError, match='at least one row'):
        plot_method_bars(tmp_path / 'e.png', [])


def test_importing_plots_leaves_the_backend_alone():
    import importlib

    import matplotlib

    import ltc_pyg.pipelines.plots as plots
    before = matplotlib.get_backend()
    matplotlib.use('svg')
    try:
        importlib.reload(plots)
        assert matplotlib.get_backend() == 'svg'
    finally:
        matplotlib.use(before)
