r"""Learned and selected edges for the map equation, beside Infomap, in one
run: train on one split, cluster another.

Rows (pairwise F, BCubed F, NMI on the test split):

* ``infomap``: Infomap on the kNN graph cut at a similarity threshold
  chosen on the train split (the reference to beat);
* ``fc-es (default)``: NEP + early stop + Infomap with the package's
  defaults (temperature and similarity floor read from the test graph,
  ``nep_threshold`` 0.22);
* ``fc-es (chosen on train)``: its similarity floor (``threshold``) chosen
  on the train split, as Infomap's;
* ``learned-edges``: the edge scorer trained on the train split (budget
  from ``--config``), links at probability :math:`\geq 0.5` weighted by
  their log-odds, clusters merged by link mass.

Infomap's partition depends on its seed (about 0.2 points of pairwise F on
LFW); with ``--seeds S`` every clustering runs with seeds ``0..S-1`` and
the table shows the mean and the spread (max - min) of pairwise F.

Before the table, the diagnostic that predicts it: the AUC with which the
cosine, NEP and the learned probability separate same-identity kNN edges
from the others, on the test split::

    python benchmarks/bench_edges.py \
        --train /tmp/ltc_bench/synth synth_train \
        --test /tmp/ltc_bench/synth synth_test --dim 256 \
        --config benchmarks/configs/synthetic.yaml --work /tmp/ltc_bench/ckpt
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

import numpy as np
import yaml
from bench_methods import (
    add_transfer_arguments,
    best_on_train,
    load_graph,
    quality_row,
    trained,
)
from scipy.stats import rankdata

from ltc_pyg.graph.edge_probability import neighbor_edge_probability
from ltc_pyg.pipelines.report import format_table
from ltc_pyg.pipelines.run import make_method

COLUMNS = ['method', 'chosen on train', 'pairwise_fscore', 'bcubed_fscore',
           'nmi', 'clusters', 'pairwise spread', 'train s', 'cluster s']


def edge_auc(score: np.ndarray, same: np.ndarray) -> float:
    r"""Area under the ROC curve of ``score`` for the ``same`` edges (the
    Mann-Whitney statistic, ties counted half)."""
    ranks = rankdata(score)
    positives = int(same.sum())
    negatives = same.size - positives
    return float((ranks[same].sum() - positives * (positives + 1) / 2)
                 / (positives * negatives))


def seeded_row(name: str, chosen: str, method: Any, graph: Any,
               train_seconds: float | None, seeds: int) -> dict[str, Any]:
    r"""A quality row averaged over the method's seeds ``0..seeds-1``."""
    rows = []
    for seed in range(seeds):
        method.seed = seed
        rows.append(quality_row(name, chosen, method, graph, train_seconds))
    pairwise = [row['pairwise_fscore'] for row in rows]
    mean = {key: float(np.mean([row[key] for row in rows]))
            for key in rows[0] if isinstance(rows[0][key], float)}
    return {**rows[0], **mean,
            'clusters': round(np.mean([row['clusters'] for row in rows])),
            'pairwise spread': max(pairwise) - min(pairwise)}


def with_best(graph: Any, method: Any, args: argparse.Namespace
              ) -> tuple[Any, str]:
    r"""The method at its threshold chosen on ``graph`` (the train split),
    recorded in ``--work`` (see :func:`bench_methods.best_on_train`)."""
    key, value = best_on_train(graph, method, args.work / 'sweeps.json',
                               not args.retrain)
    method.params = dataclasses.replace(method.params, **{key: value})
    return method, f'{key}={value:.4f}'


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_transfer_arguments(parser)
    parser.add_argument('--seeds', type=int, default=1,
                        help='cluster with seeds 0..S-1 and average')
    args = parser.parse_args(argv)
    config = yaml.safe_load(args.config.read_text()) or {}
    train_graph = load_graph(*args.train, args.dim, args.knn_dir)
    test_graph = load_graph(*args.test, args.dim, args.knn_dir)
    args.work.mkdir(parents=True, exist_ok=True)

    rows = []
    infomap, chosen = with_best(train_graph, make_method('infomap'), args)
    rows.append(seeded_row('infomap', chosen, infomap, test_graph, None,
                           args.seeds))
    rows.append(seeded_row('fc-es (default)', '', make_method('fc-es'),
                           test_graph, None, args.seeds))
    fc_es, chosen = with_best(train_graph, make_method('fc-es'), args)
    rows.append(seeded_row('fc-es (chosen on train)', chosen, fc_es,
                           test_graph, None, args.seeds))
    params = dict(config.get('learned-edges') or {})
    learned, train_seconds = trained(train_graph, 'learned-edges', params,
                                     args)
    rows.append(seeded_row('learned-edges', json.dumps(
        {k: v for k, v in params.items() if k != 'train'}) if params else '',
        learned, test_graph, train_seconds, args.seeds))

    neighbor = test_graph.knn_neighbor
    same = (test_graph.y[neighbor[:, 1:]]
            == test_graph.y.view(-1, 1)).numpy().reshape(-1)
    scores = {
        'cosine': test_graph.knn_similarity[:, 1:],
        'NEP (fc-es default temperature)': neighbor_edge_probability(
            neighbor, test_graph.knn_similarity)[:, 1:],
        'learned-edges probability': learned.edge_probability(
            test_graph)[:, 1:],
    }
    print(f'train {args.train[1]} -> test {args.test[1]}: '
          f'{test_graph.num_nodes} faces, '
          f'{np.unique(test_graph.y.numpy()).size} identities, '
          f'{same.mean():.3f} of the kNN edges same-identity')
    print()
    print('| edge score | AUC (same-identity kNN edges, test) |')
    print('|---|---|')
    for name, score in scores.items():
        print(f'| {name} | {edge_auc(score.numpy().reshape(-1), same):.4f} |')
    print()
    print(format_table(rows, COLUMNS))


if __name__ == '__main__':
    main()
