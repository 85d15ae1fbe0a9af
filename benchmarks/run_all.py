r"""Runs the benchmark suite and rewrites the tables of
``benchmarks/README.md``.

Each section of the README between ``<!-- suite:NAME -->`` and
``<!-- /suite:NAME -->`` is replaced by the commands of that section and
what they printed (the scripts print markdown tables next to a baseline
measured in the same run), with the date and the machine. Data come first:
the synthetic sets of ``../shared/data/make_synthetic.py`` (default splits,
and 10K / 100K / 584K test sets, plus 1.74M for ``scale-1.74m`` only) and
their kNN files are generated under ``--data`` when absent; sections whose
data is missing (the real face sets outside this repository) are skipped
with a message. GPU sections run only where CUDA is available.

Usage::

    python benchmarks/run_all.py                      # everything
    python benchmarks/run_all.py --only metrics knn   # some sections
    python benchmarks/run_all.py --list               # what there is
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ltc_pyg.data.io import atomic_write

BENCHMARKS = Path(__file__).resolve().parent
README = BENCHMARKS / 'README.md'
SHARED_DATA = Path(os.environ.get(
    'LTC_SHARED_DATA', BENCHMARKS.parents[1] / 'shared' / 'data'))
GENERATOR = SHARED_DATA / 'make_synthetic.py'

#: Test sets for the scale section: (folder, name, identities). The mean
#: identity size 68.55 puts 8,573 identities at MS1M part1_test's 584K.
SCALE_SETS = [('synth10k', 'synth_test_10k', 147),
              ('synth100k', 'synth_test_100k', 1470),
              ('synth584k', 'synth_test_584k', 8573)]
#: The next size of MS1M's 1/3/5/7/9 protocol (parts 1-3, 1.74M faces),
#: identities scaled with the faces at the same mean size; generated only
#: for the section that uses it (~1.8 GB of features, blocked kNN).
LARGE_SETS = [('synth1740k', 'synth_test_1740k', 25383)]
#: The methods that scale past 584K on one machine.
SCALABLE_METHODS = ['knn-threshold', 'cdp', 'infomap', 'gcn-v', 'gcn-v+e',
                    'fc-es', 'learned-edges']

#: Lists probed per node by the blocked kNN search in the benchmarks.
BLOCKED_PROBES = '128'


@dataclass
class Section:
    r"""A README section: its commands, and the data they need."""
    name: str
    commands: Callable[[Path], list[str]]
    needs: Callable[[Path], list[Path]] = lambda data: []
    gpu: bool = False
    large: bool = False  # needs LARGE_SETS


def py(script: str, *args: str) -> str:
    return shlex.join(['python', f'benchmarks/{script}', *args])


def synth(data: Path, name: str) -> list[str]:
    return [str(data / 'synth'), name]


def synthetic_transfer(data: Path, script: str, *args: str,
                       test: list[str] | None = None) -> str:
    r"""``script ARGS`` trained on synth_train, clustering ``test`` (ROOT,
    NAME; default synth_test), with the budgets of
    ``benchmarks/configs/synthetic.yaml``."""
    return py(script, *args, '--train', *synth(data, 'synth_train'),
              '--test', *(test or synth(data, 'synth_test')), '--dim', '256',
              '--config', 'benchmarks/configs/synthetic.yaml', '--work',
              str(data / 'checkpoints' / 'synthetic'))


def real_transfer(data: Path, script: str, *args: str) -> str:
    r"""``script ARGS`` trained on CFP, clustering LFW, with the budgets
    of ``benchmarks/configs/real.yaml``."""
    return py(script, *args, '--train', str(SHARED_DATA / 'cfp_dlib128'),
              'cfp_all', '--test', str(SHARED_DATA / 'lfw_dlib128'),
              'lfw_all', '--dim', '128', '--knn-dir', str(data / 'knns'),
              '--config', 'benchmarks/configs/real.yaml', '--work',
              str(data / 'checkpoints' / 'real'))


def real_faces(data: Path) -> list[Path]:
    return [SHARED_DATA / 'cfp_dlib128', SHARED_DATA / 'lfw_dlib128']


def scale_data(data: Path) -> list[str]:
    return [arg for folder, name, _ in SCALE_SETS
            for arg in ('--data', str(data / folder), name)]


SECTIONS = [
    Section('metrics', lambda data: [py('bench_metrics.py')]),
    Section('knn', lambda data: [
        py('bench_knn.py', '--features', str(data / 'synth584k' / 'features'
                                             / 'synth_test_584k.bin'),
           '--sizes', '50000', '100000', '--methods', 'flat', 'ivf', 'hnsw'),
        py('bench_knn.py', '--features', str(data / 'synth584k' / 'features'
                                             / 'synth_test_584k.bin'),
           '--sizes', '0', '--methods', 'ivf', 'hnsw'),
        py('bench_knn.py', '--features', str(data / 'synth584k' / 'features'
                                             / 'synth_test_584k.bin'),
           '--sizes', '100000', '0', '--methods', 'blocked', '--num-probes',
           BLOCKED_PROBES)]),
    # The [E, D] scatter baseline needs 48 GB at 584K: 100K on the CPU.
    Section('spmm', lambda data: [
        py('bench_spmm.py', '--num-nodes', '100000', '--k', '80', '--dim',
           '256')]),
    Section('quality-synthetic', lambda data: [
        synthetic_transfer(data, 'bench_methods.py', 'quality')]),
    Section('quality-real', lambda data: [
        real_transfer(data, 'bench_methods.py', 'quality')],
        needs=real_faces),
    Section('edges', lambda data: [
        synthetic_transfer(data, 'bench_edges.py'),
        real_transfer(data, 'bench_edges.py', '--seeds', '5')],
        needs=real_faces),
    Section('gcn-d-proposals', lambda data: [
        py('bench_gcn_d_s.py', 'quality', '--train',
           *synth(data, 'synth_train'), '--test', *synth(data, 'synth_test'),
           '--dim', '256', '--preset', preset, '--max-size', '900')
        for preset in ('2', '8')]),
    # A 600 s budget per method and set: the 10-minute inference target.
    Section('scale', lambda data: [
        py('bench_methods.py', 'scale', '--dim', '256', *scale_data(data),
           '--budget', '600', '--work',
           str(data / 'checkpoints' / 'synthetic'))],
        needs=lambda data: [data / 'checkpoints' / 'synthetic']),
    # 584K -> 1.74M: time, peak RSS and pairwise F per size, the growth
    # exponents and the extrapolation to 5.21M (MS1M parts 1-9). Hours on
    # 2 cores (generation and blocked kNN of 1.74M included): run it
    # alone.
    Section('scale-1.74m', lambda data: [
        py('bench_methods.py', 'scale', '--dim', '256', '--data',
           str(data / 'synth584k'), 'synth_test_584k', '--data',
           str(data / 'synth1740k'), 'synth_test_1740k', '--methods',
           *SCALABLE_METHODS, '--budget', '3600', '--extrapolate',
           '1740000', '5210000', '--work',
           str(data / 'checkpoints' / 'synthetic'))],
        needs=lambda data: [data / 'checkpoints' / 'synthetic'],
        large=True),
    # L-GCN alone at 584K, over the scale budget: 47 minutes on 2 cores
    # before issue 16, 6-8 since (exact shortcut, pivot_coverage).
    Section('lgcn-584k', lambda data: [
        py('bench_methods.py', 'scale', '--dim', '256', '--data',
           str(data / 'synth584k'), 'synth_test_584k', '--methods', 'lgcn',
           '--budget', '100000', '--work',
           str(data / 'checkpoints' / 'synthetic'))],
        needs=lambda data: [data / 'checkpoints' / 'synthetic']),
    # pivot_coverage against every node a pivot, from one all-pivot run.
    Section('lgcn-pivots', lambda data: [
        synthetic_transfer(data, 'bench_lgcn_pivots.py'),
        real_transfer(data, 'bench_lgcn_pivots.py')],
        needs=real_faces),
    # The same at 584K: one all-pivot linkage (~25 min on 2 cores) answers
    # every coverage and seed. Run it alone.
    Section('lgcn-pivots-584k', lambda data: [
        synthetic_transfer(data, 'bench_lgcn_pivots.py', '--coverages', '4',
                           '6', '8', test=[str(data / 'synth584k'),
                                           'synth_test_584k'])]),
    # Features to labels with no kNN file: the search is in the time.
    Section('end-to-end-584k', lambda data: [
        py('bench_end_to_end.py', '--data', str(data / 'synth584k'),
           'synth_test_584k', '--dim', '256', '--method', 'learned-edges',
           '--checkpoint', str(data / 'checkpoints' / 'synthetic'
                               / 'learned-edges.pt'),
           '--knn-method', 'blocked', '--num-probes', BLOCKED_PROBES)],
        needs=lambda data: [data / 'checkpoints' / 'synthetic'
                            / 'learned-edges.pt']),
    # Exact kNN in torch where faiss-gpu is not installed; the best method
    # (learned-edges) and the other learned methods at 100K and 584K (L-GCN
    # stops at 100K when over 2 minutes there). Checkpoints: the edges and
    # quality-synthetic sections.
    Section('gpu', lambda data: [
        py('bench_knn.py', '--features', str(data / 'synth584k' / 'features'
                                             / 'synth_test_584k.bin'),
           '--sizes', '100000', '0', '--methods', 'flat', 'blocked',
           '--num-probes', BLOCKED_PROBES, '--device', 'cuda'),
        py('bench_spmm.py', '--num-nodes', '584013', '--device', 'cuda'),
        py('bench_methods.py', 'scale', '--dim', '256', '--device', 'cuda',
           '--data', str(data / 'synth100k'), 'synth_test_100k',
           '--data', str(data / 'synth584k'), 'synth_test_584k',
           '--methods', 'learned-edges', 'gcn-v', 'gcn-v+e', 'gcn-d',
           'gcn-d+s', 'lgcn',
           '--budget', '120', '--work',
           str(data / 'checkpoints' / 'synthetic'))],
        needs=lambda data: [data / 'checkpoints' / 'synthetic'
                            / 'learned-edges.pt'], gpu=True),
]


def run(command: list[str]) -> None:
    print('+', shlex.join(command), flush=True)
    subprocess.run(command, check=True)


def prepare(data: Path, device: str, large: bool = False) -> None:
    r"""Generates the synthetic sets and their kNN files where absent
    (:data:`LARGE_SETS` too with ``large``)."""
    if not GENERATOR.is_file():
        raise SystemExit(f'{GENERATOR} is absent: the synthetic benchmark '
                         f'comes from ../shared/data (set LTC_SHARED_DATA)')
    sets = [('synth', 'synth_train', None), ('synth', 'synth_test', None)]
    if not (data / 'synth' / 'features' / 'synth_test.bin').is_file():
        run([sys.executable, str(GENERATOR), '--out', str(data / 'synth'),
             '--no-eval'])
    for folder, name, identities in SCALE_SETS + (LARGE_SETS if large
                                                  else []):
        if not (data / folder / 'features' / f'{name}.bin').is_file():
            run([sys.executable, str(GENERATOR), '--out', str(data / folder),
                 '--splits', 'test', '--test-ids', str(identities),
                 '--mean-size', '68.55', '--test-name', name, '--no-eval'])
        sets.append((folder, name, identities))
    real = [(SHARED_DATA / 'cfp_dlib128', 'cfp_all', 128),
            (SHARED_DATA / 'lfw_dlib128', 'lfw_all', 128)]
    for folder, name, _ in sets:
        root = data / folder
        knn_file(root / 'features' / f'{name}.bin', 256,
                 root / 'knns' / name / 'faiss_k_80.npz', device)
    for root, name, dim in real:  # ../shared is read-only: kNN in data
        if root.is_dir():
            knn_file(root / 'features' / f'{name}.bin', dim,
                     data / 'knns' / name / 'faiss_k_80.npz', device)


def knn_file(features: Path, dim: int, out: Path, device: str) -> None:
    r"""``ltc-pyg knn`` unless ``out`` exists: exact on a GPU, and on the
    CPU up to 100K rows; the package's default above (``auto``: blocked
    past 200K nodes; the 584K file of the README's tables predates it and
    came from HNSW, recall@80 0.89 against 0.95)."""
    if out.is_file():
        return
    exact = (device != 'cpu'
             or features.stat().st_size <= 100_000 * dim * 4 * 1.1)
    run([sys.executable, '-m', 'ltc_pyg.pipelines.cli', 'knn', '--features',
         str(features), '--dim', str(dim), '--k', '80', '--method',
         'flat' if exact else 'auto', '--device', device, '--out', str(out)])


def machine() -> str:
    gpu = (torch.cuda.get_device_name(0) if torch.cuda.is_available()
           else 'no GPU')
    return (f'{os.cpu_count()} CPU cores, {gpu}, torch {torch.__version__}, '
            f'Python {platform.python_version()}')


def markdown(output: str) -> str:
    r"""Printed text with blank lines around each table."""
    lines: list[str] = []
    for line in output.strip().splitlines():
        is_table = line.startswith('|')
        if lines and lines[-1] and (is_table != lines[-1].startswith('|')):
            lines.append('')
        lines.append(line)
    return '\n'.join(lines)


def run_section(section: Section, data: Path) -> str:
    parts = []
    for command in section.commands(data):
        print(f'[{section.name}] {command}', flush=True)
        start = time.perf_counter()
        completed = subprocess.run(
            [sys.executable, *shlex.split(command)[1:]], cwd=BENCHMARKS.parent,
            capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if completed.returncode != 0:
            raise RuntimeError(f'[{section.name}] {command} failed:\n'
                               f'{completed.stderr[-3000:]}')
        print(completed.stdout, flush=True)
        parts.append(f'```bash\n{command}\n```\n\n'
                     f'{markdown(completed.stdout)}\n\n'
                     f'({seconds:.0f} s in all)')
    stamp = datetime.date.today().isoformat()
    return (f'Measured {stamp} on {machine()}.\n\n' + '\n\n'.join(parts))


def rewrite(readme: Path, name: str, body: str) -> None:
    text = readme.read_text()
    pattern = re.compile(rf'(<!-- suite:{re.escape(name)} -->\n).*?'
                         rf'(<!-- /suite:{re.escape(name)} -->)', re.S)
    if not pattern.search(text):
        raise SystemExit(f'{readme} has no <!-- suite:{name} --> section')
    with atomic_write(readme, 'w') as file:
        file.write(pattern.sub(
            lambda m: m.group(1) + body + '\n' + m.group(2), text))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data', type=Path, default=Path('/tmp/ltc_bench'),
                        help='where data, kNN files and checkpoints go')
    parser.add_argument('--only', nargs='+', metavar='SECTION',
                        help='run these sections only')
    parser.add_argument('--list', action='store_true',
                        help='print the sections and their commands')
    parser.add_argument('--device', default='cpu',
                        help="device of the kNN searches of the data "
                        "preparation (default: cpu)")
    args = parser.parse_args(argv)
    names = [section.name for section in SECTIONS]
    unknown = set(args.only or []) - set(names)
    if unknown:
        parser.error(f'unknown sections {sorted(unknown)} (have {names})')
    if args.list:
        for section in SECTIONS:
            print(f'{section.name}:')
            for command in section.commands(args.data):
                print(f'  {command}')
        return
    chosen = [section for section in SECTIONS
              if not args.only or section.name in args.only]
    text = README.read_text()
    unmarked = [section.name for section in chosen
                if f'<!-- suite:{section.name} -->' not in text]
    if unmarked:
        parser.error(f'{README} has no <!-- suite:NAME --> section for '
                     f'{unmarked}: add one before running them')
    prepare(args.data, args.device,
            large=any(section.large for section in chosen))
    for section in chosen:
        if section.gpu and not torch.cuda.is_available():
            print(f'[{section.name}] skipped: no CUDA device')
            continue
        missing = [path for path in section.needs(args.data)
                   if not path.exists()]
        if missing:
            print(f'[{section.name}] skipped: missing {missing}')
            continue
        rewrite(README, section.name, run_section(section, args.data))


if __name__ == '__main__':
    main()
