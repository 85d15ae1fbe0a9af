import json

import numpy as np

from ltc_pyg.data.io import read_labels, write_features, write_labels
from ltc_pyg.metrics import evaluate
from ltc_pyg.pipelines.cli import main

# Unit vectors at 0, 5, 15 degrees (identity 0), 90, 95 (1) and 180 (2).
ANGLES = np.deg2rad([0., 5., 15., 90., 95., 180.])
X = np.stack([np.cos(ANGLES), np.sin(ANGLES)], 1).astype(np.float32)
Y = np.array([0, 0, 0, 1, 1, 2])


def cluster(tmp_path, report, *extra):
    write_features(tmp_path / 'f.bin', X)
    write_labels(tmp_path / 'l.meta', Y)
    return main(['-q', 'cluster', '--method', 'knn-threshold', '--features',
                 str(tmp_path / 'f.bin'), '--dim', '2', '--k', '3',
                 '--threshold', '0.99', '--out', str(tmp_path / 'p.meta'),
                 '--report', str(report), *extra])


def test_report_directory_with_plots(tmp_path):
    out = tmp_path / 'report'
    assert cluster(tmp_path, out, '--labels', str(tmp_path / 'l.meta')) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        'cluster_sizes.png', 'report.json', 'threshold_sweep.png']
    written = json.loads((out / 'report.json').read_text())
    pred = read_labels(tmp_path / 'p.meta')
    # {0, 5} | {15} | {90, 95} | {180}: recall 4 of 8 ordered pairs.
    assert pred.tolist() == [0, 0, 1, 2, 2, 3]
    assert written['metrics']['pairwise_recall'] == 0.5
    sweep = written['threshold_sweep']
    assert sweep['param'] == 'threshold' and len(sweep['values']) >= 2
    # Thresholds in (cos 10, cos 5] deg give the run's labels (F 2/3); in
    # (cos 15, cos 10] identities 0 and 1 are whole (F 1).
    cos5, cos10, cos15 = np.cos(np.deg2rad([5, 10, 15]))
    checked = 0
    for value, metrics in zip(sweep['values'], sweep['metrics'], strict=True):
        if cos10 < value <= cos5:
            assert metrics['pairwise_fscore'] == evaluate(
                Y, pred)['pairwise_fscore']
            checked += 1
        elif cos15 < value <= cos10:
            assert metrics['pairwise_fscore'] == 1.0
    assert checked >= 1


def test_report_directory_without_labels_has_no_sweep(tmp_path):
    out = tmp_path / 'r'
    assert cluster(tmp_path, out) == 0
    assert sorted(p.name for p in out.iterdir()) == ['cluster_sizes.png',
                                                     'report.json']
    assert json.loads((out / 'report.json').read_text())['metrics'] is None


def test_json_report_stays_a_file(tmp_path):
    out = tmp_path / 'r.json'
    assert cluster(tmp_path, out, '--labels', str(tmp_path / 'l.meta')) == 0
    written = json.loads(out.read_text())
    assert 'threshold_sweep' not in written
    assert written['metrics']['pairwise_recall'] == 0.5
