r"""L-GCN with fewer pivots (``pivot_coverage``) beside every node a pivot,
in one run: train on one split, cluster another.

A pivot's linkage scores do not depend on which other nodes are pivots, so
the script runs the model once on every node of the test split (the
``every node`` row, timed) and answers each ``pivot_coverage`` from those
scores: the method's own pivot choice
(:meth:`~ltc_pyg.pipelines.lgcn.LGCNMethod.scored_links`) and propagation
run unchanged over the rows of the pivots it asks for. Each coverage runs
with seeds ``0..S-1`` (the pivots' visiting order); the table shows the
means, the spread (max - min) of pairwise F and the linkage seconds the
chosen pivots take (all-pivot seconds times their share). The measured
time at 584K is ``run_all.py --only lgcn-584k``::

    python benchmarks/bench_lgcn_pivots.py \
        --train /tmp/ltc_bench/synth synth_train \
        --test /tmp/ltc_bench/synth synth_test --dim 256 \
        --config benchmarks/configs/synthetic.yaml --work /tmp/ltc_bench/ckpt
"""
from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import yaml
from bench_methods import (
    add_transfer_arguments,
    load_graph,
    quality_row,
    trained,
)

from ltc_pyg.pipelines.lgcn import LGCNMethod
from ltc_pyg.pipelines.report import format_table

COLUMNS = ['pivot_coverage', 'pivots', 'pairwise_fscore', 'bcubed_fscore',
           'nmi', 'clusters', 'pairwise spread', 'linkage s']

Linkage = Callable[..., tuple[np.ndarray, np.ndarray]]


def every_pivot_linkage(method: LGCNMethod, graph: Any
                        ) -> tuple[Linkage, float]:
    r"""A stand-in for ``method.linkage`` that answers any pivots from one
    run over every node, and that run's seconds. It sets
    ``linkage_seconds_`` to the all-pivot seconds times the pivots'
    share."""
    pairs, scores = method.linkage(graph)
    seconds = dict(method.linkage_seconds_)
    num_nodes = graph.num_nodes
    per_pivot = pairs.shape[0] // num_nodes

    def linkage(graph: Any, pivots: torch.Tensor | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        if pivots is None:
            pivots = torch.arange(num_nodes)
        rows = (pivots.view(-1, 1) * per_pivot
                + torch.arange(per_pivot)).view(-1).numpy()
        share = pivots.numel() / num_nodes
        method.linkage_seconds_ = {stage: spent * share
                                   for stage, spent in seconds.items()}
        return pairs[rows], scores[rows]

    return linkage, sum(seconds.values())


def coverage_row(method: LGCNMethod, graph: Any, coverage: int | None,
                 seeds: int) -> dict[str, Any]:
    r"""Quality of ``pivot_coverage=coverage``, averaged over seeds."""
    method.params = dataclasses.replace(method.params,
                                        pivot_coverage=coverage)
    rows = []
    for seed in range(seeds if coverage is not None else 1):
        method.seed = seed
        row = quality_row('lgcn', '', method, graph, None)
        row['pivots'] = method.num_pivots_ / graph.num_nodes
        row['linkage s'] = sum(method.linkage_seconds_.values())
        rows.append(row)
    pairwise = [row['pairwise_fscore'] for row in rows]
    mean = {key: float(np.mean([row[key] for row in rows]))
            for key in ('pivots', 'pairwise_fscore', 'bcubed_fscore', 'nmi',
                        'linkage s')}
    return {'pivot_coverage': ('every node' if coverage is None
                               else coverage), **mean,
            'clusters': round(np.mean([row['clusters'] for row in rows])),
            'pairwise spread': max(pairwise) - min(pairwise)}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_transfer_arguments(parser)
    parser.add_argument('--coverages', type=int, nargs='+',
                        default=[2, 4, 8])
    parser.add_argument('--seeds', type=int, default=3,
                        help='pivot orders 0..S-1 per coverage')
    args = parser.parse_args(argv)

    config = yaml.safe_load(args.config.read_text()) or {}
    args.work.mkdir(parents=True, exist_ok=True)
    train_graph = load_graph(*args.train, args.dim, args.knn_dir)
    method, _ = trained(train_graph, 'lgcn', dict(config.get('lgcn') or {}),
                        args)
    del train_graph
    test_graph = load_graph(*args.test, args.dim, args.knn_dir)
    method.progress_bar = False
    method.linkage, seconds = every_pivot_linkage(method, test_graph)
    print(f'L-GCN linkage of every node of {args.test[1]} '
          f'({test_graph.num_nodes}): {seconds:.1f} s', flush=True)
    rows = [coverage_row(method, test_graph, coverage, args.seeds)
            for coverage in (None, *args.coverages)]
    print(format_table(rows, COLUMNS))
    return rows


if __name__ == '__main__':
    main()
