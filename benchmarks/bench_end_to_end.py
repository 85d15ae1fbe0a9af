r"""End to end, features to labels: ``ltc-pyg cluster`` in a fresh process
from a features file with no kNN file and no cache, so the kNN search is
part of the time. Prints the wall time of the whole command (Python start
and file reading included), each stage's time and peak RSS from its
report, and the pairwise F against the labels::

    python benchmarks/bench_end_to_end.py \
        --data /tmp/ltc_data/synth584k synth_test_584k --dim 256 \
        --method learned-edges \
        --checkpoint /tmp/ltc_data/checkpoints/synthetic/learned-edges.pt \
        --knn-method blocked --num-probes 128
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ltc_pyg.pipelines.report import format_table

COLUMNS = ['N', 'method', 'kNN', 'wall s', 'peak RSS (GB)',
           'pairwise_fscore', 'stages (s / peak GB)']


def end_to_end(args: argparse.Namespace) -> dict[str, Any]:
    r"""One ``ltc-pyg cluster`` run from features; its table row."""
    root, name = args.data
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / 'report.json'
        command = [sys.executable, '-m', 'ltc_pyg.pipelines.cli', 'cluster',
                   '--method', args.method, '--dim', str(args.dim),
                   '--features', f'{root}/features/{name}.bin',
                   '--labels', f'{root}/labels/{name}.meta',
                   '--knn-method', args.knn_method,
                   '--num-probes', str(args.num_probes),
                   '--out', f'{tmp}/pred.meta', '--report', str(report),
                   '--device', args.device, '--no-progress']
        if args.checkpoint is not None:
            command += ['--checkpoint', str(args.checkpoint)]
        start = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if completed.returncode != 0:
            raise RuntimeError(f'{" ".join(command)} failed:\n'
                               f'{completed.stderr[-2000:]}')
        written = json.loads(report.read_text())
    knn = written['knn']
    return {'N': written['num_nodes'], 'method': args.method,
            'kNN': f"{knn['method']} k={knn['k']} P={knn['num_probes']}",
            'wall s': wall, 'peak RSS (GB)': written['peak_rss_gb'],
            'pairwise_fscore': (written['metrics'] or {}).get(
                'pairwise_fscore'),
            'stages (s / peak GB)': ', '.join(
                f"{s['name']} {s['seconds']:.1f}/{s['peak_rss_gb']:.1f}"
                for s in written['stages'])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data', nargs=2, metavar=('ROOT', 'NAME'),
                        required=True, help='ROOT/features/NAME.bin and '
                        'ROOT/labels/NAME.meta')
    parser.add_argument('--dim', type=int, required=True)
    parser.add_argument('--method', required=True)
    parser.add_argument('--checkpoint', type=Path)
    parser.add_argument('--knn-method', default='blocked')
    parser.add_argument('--num-probes', type=int, default=128)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    print(format_table([end_to_end(args)], COLUMNS))


if __name__ == '__main__':
    main()
