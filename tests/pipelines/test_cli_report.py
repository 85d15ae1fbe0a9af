import json

import numpy as np

from ltc_pyg.data.io import read_labels, write_features, write_labels
from ltc_pyg.metrics import evaluate
from ltc_pyg.pipelines.cli import main
from ltc_pyg.pipelines.report import dumps_json

# Unit vectors at 0, 5, 15 degrees (identity 0), 90, 95 (1) and 180 (2).
ANGLES = np.deg2rad([0., 5., 15., 90., 95., 180.])
X = np.stack([np.cos(ANGLES), np.sin(ANGLES)], 1).astype(np.float32)
Y = np.array([0, 0, 0, 1, 1, 2])


def expected_labels(threshold):
    r"""Components of the k=3 graph by hand: 0 links 5 (cos 5 deg) and 15
    (cos 15), 5 links 15 (cos 10), 90 and 95 link (cos 5) and link 15
    (cos 75, cos 80), 180 links 95 (cos 85) and 90 (cos 90 = 0)."""
    cos = np.cos(np.deg2rad([5, 10, 75, 85]))
    if threshold > cos[0]:
        return np.arange(6)
    if threshold > cos[1]:
        return np.array([0, 0, 1, 2, 2, 3])
    if threshold > cos[2]:
        return Y
    if threshold > cos[3]:
        return np.array([0, 0, 0, 0, 0, 1])
    return np.zeros(6, dtype=np.int64)


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
    assert sweep['values'][-1] == 0.999  # widened to threshold + 0.1
    for value, metrics in zip(sweep['values'], sweep['metrics'],
                              strict=True):
        # report.json writes undefined values (NaN) as null.
        assert metrics == json.loads(dumps_json(
            evaluate(Y, expected_labels(value))))


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
