r"""kNN search: wall time (index build + search), recall@k and peak memory
of exact (flat), IVF, HNSW and blocked search on MS1M-like synthetic
features.

Recall is measured against exact search: against the full flat result for
sizes where ``flat`` is run, else against brute force on a random sample of
queries. The exact flat search is the baseline in the same run. Peak RSS
is the process' high-water mark so far (it includes the features and the
earlier methods of the same run).

Usage::

    python ../shared/data/make_synthetic.py --out /tmp/ltc_data/synth584k \
        --splits test --test-ids 8573 --mean-size 68 \
        --test-name synth_test_584k --no-eval
    python benchmarks/bench_knn.py \
        --features /tmp/ltc_data/synth584k/features/synth_test_584k.bin \
        --sizes 50000 100000 --methods flat ivf hnsw
    python benchmarks/bench_knn.py --features ... --sizes 0 --methods ivf
    python benchmarks/bench_knn.py --features ... --sizes 0 \
        --methods blocked --num-probes 128
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from ltc_pyg.data.io import KNN, read_features
from ltc_pyg.graph.knn import knn_recall, knn_search, l2_normalize


def sampled_recall(x: np.ndarray, knn: KNN, num_queries: int,
                   seed: int) -> float:
    r"""Recall@k of ``knn`` on ``num_queries`` random rows, against brute
    force over all of ``x`` (in blocks, so memory stays small)."""
    rng = np.random.default_rng(seed)
    queries = np.sort(rng.choice(x.shape[0], num_queries, replace=False))
    k = knn.neighbor.shape[1]
    exact = np.empty((num_queries, k), dtype=np.int64)
    for start in range(0, num_queries, 100):
        rows = queries[start:start + 100]
        similarity = x[rows] @ x.T
        similarity[np.arange(rows.size), rows] = np.inf  # self first
        top = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(similarity, top, 1), axis=1)
        exact[start:start + 100] = np.take_along_axis(top, order, 1)
    dummy = np.zeros((num_queries, k), np.float32)
    return knn_recall(KNN(knn.neighbor[queries], dummy), KNN(exact, dummy))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--features', required=True)
    parser.add_argument('--dim', type=int, default=256)
    parser.add_argument('--sizes', type=int, nargs='+',
                        default=[50_000, 100_000],
                        help='first N rows; 0 = all rows')
    parser.add_argument('--methods', nargs='+', default=['flat', 'ivf',
                                                         'hnsw', 'blocked'])
    parser.add_argument('--k', type=int, default=80)
    parser.add_argument('--num-probes', type=int, default=64,
                        help='lists probed per query by ivf and blocked')
    parser.add_argument('--ef-search', type=int, default=256)
    parser.add_argument('--hnsw-m', type=int, default=32)
    parser.add_argument('--ef-construction', type=int, default=80)
    parser.add_argument('--sample-queries', type=int, default=2000)
    parser.add_argument('--device', default='cpu',
                        help="faiss device, 'cpu' or 'cuda'")
    args = parser.parse_args(argv)

    features = read_features(args.features, args.dim)
    print(f'device {args.device}, k={args.k}, IVF/blocked num_probes='
          f'{args.num_probes}, HNSW M={args.hnsw_m} ef_construction='
          f'{args.ef_construction} ef_search={args.ef_search}')
    print('| N | method | seconds | queries/s | recall@k | vs flat | '
          'peak RSS (GB) |')
    print('|---|---|---|---|---|---|---|')
    for size in args.sizes:
        x = l2_normalize(features[:size] if size else features)
        exact, exact_seconds = None, None
        for method in args.methods:
            start = time.perf_counter()
            knn = knn_search(x, args.k, method, normalize=False,
                             num_probes=args.num_probes,
                             ef_search=args.ef_search, hnsw_m=args.hnsw_m,
                             ef_construction=args.ef_construction,
                             device=args.device, progress_bar=False)
            seconds = time.perf_counter() - start
            if method == 'flat':
                exact, exact_seconds = knn, seconds
            recall = (knn_recall(knn, exact) if exact is not None else
                      sampled_recall(x, knn, args.sample_queries, seed=0))
            speedup = (f'{exact_seconds / seconds:.1f}x faster'
                       if exact_seconds else 'n/a')
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            print(f'| {x.shape[0]} | {method} | {seconds:.1f} | '
                  f'{x.shape[0] / seconds:.0f} | {recall:.4f} | {speedup} | '
                  f'{peak:.1f} |', flush=True)


if __name__ == '__main__':
    main()
