r"""Sparse aggregation ``adj_t @ x`` on a kNN-shaped graph: torch's CSR
matmul (the default layout of :func:`ltc_pyg.graph.to_sparse_adjacency`)
against torch-sparse's ``SparseTensor`` (when installed) and PyG's
``EdgeIndex``; the scatter-based path that builds ``[E, D]`` messages is the
baseline.

Usage::

    python benchmarks/bench_spmm.py --num-nodes 100000 --k 80 --dim 256
"""
from __future__ import annotations

import argparse
import time

import torch
from torch_geometric import EdgeIndex
from torch_geometric.typing import WITH_TORCH_SPARSE
from torch_geometric.utils import scatter

from ltc_pyg.graph.transforms import to_sparse_adjacency


def best_of(repeat: int, function, device: str) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeat):
        if device == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        function()
        if device == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--num-nodes', type=int, default=100_000)
    parser.add_argument('--k', type=int, default=80)
    parser.add_argument('--dim', type=int, default=256)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    args = parser.parse_args(argv)
    generator = torch.Generator().manual_seed(0)
    n, k = args.num_nodes, args.k
    source = torch.randint(0, n, (n * k, ), generator=generator)
    target = torch.arange(n).repeat_interleave(k)
    edge_index = torch.stack([source, target])
    weight = torch.rand(n * k, generator=generator)
    x = torch.randn(n, args.dim, generator=generator)
    edge_index, weight, x = (t.to(args.device) for t in (edge_index, weight,
                                                          x))
    source, target = edge_index

    rows = []
    csr = to_sparse_adjacency(edge_index, weight, n, 'csr').to(args.device)
    reference = csr @ x
    rows.append(('torch CSR (default)',
                 best_of(args.repeat, lambda: csr @ x, args.device)))
    if WITH_TORCH_SPARSE:
        adj = to_sparse_adjacency(edge_index, weight, n, 'sparse_tensor')
        assert torch.allclose(adj @ x, reference, atol=1e-3)
        rows.append(('torch-sparse SparseTensor',
                     best_of(args.repeat, lambda: adj @ x, args.device)))
    index, permutation = EdgeIndex(edge_index,
                                   sparse_size=(n, n)).sort_by('col')
    sorted_weight = weight[permutation]

    def edge_index_matmul() -> torch.Tensor:
        return index.matmul(x, sorted_weight, transpose=True)

    assert torch.allclose(edge_index_matmul(), reference, atol=1e-3)
    rows.append(('PyG EdgeIndex',
                 best_of(args.repeat, edge_index_matmul, args.device)))

    def scatter_messages() -> torch.Tensor:
        return scatter(x[source] * weight[:, None], target, 0, n, 'sum')

    rows.append(('scatter of [E, D] messages (baseline)',
                 best_of(args.repeat, scatter_messages, args.device)))
    base = rows[-1][1]
    print(f'{args.device}: N={n}, k={k}, D={args.dim}, E={n * k}; best of '
          f'{args.repeat}; '
          f'torch {torch.__version__}, {torch.get_num_threads()} threads')
    print('| aggregation | seconds | vs baseline |')
    print('|---|---|---|')
    for name, seconds in rows:
        print(f'| {name} | {seconds:.3f} | {base / seconds:.1f}x |')


if __name__ == '__main__':
    main()
