r"""What the models ask of a swappable convolution, checked when the model
is built rather than discovered in the middle of a run.

Every model takes its layers from a ``conv`` factory (a
:class:`~torch_geometric.nn.conv.MessagePassing` class, or any callable
``(in_channels, out_channels) -> layer``) or from an overridden
``init_conv``, as PyG's :class:`~torch_geometric.nn.models.basic_gnn.
BasicGNN` does. The pipelines call a layer as ``conv(x, adj_t)`` with a
sparse ``adj_t`` (weights in its values), and some models also as
``conv(x, edge_index, edge_weight)``; GCN-V's chunked inference passes a
bipartite ``(x_src, x_dst)`` pair with a rectangular ``adj_t``.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torch_geometric.nn import MessagePassing

from ltc_pyg.graph.transforms import quiet_sparse_warnings

__all__ = ['ConvFactory', 'ConvHook', 'conv_by_name', 'check_conv',
           'conv_stack']

#: ``(in_channels, out_channels) -> layer``; a layer class is one.
ConvFactory = Callable[[int, int], MessagePassing]


def conv_by_name(name: str) -> ConvFactory:
    r"""The :class:`~torch_geometric.nn.conv.MessagePassing` class called
    ``name`` in :mod:`ltc_pyg.nn.conv` or :mod:`torch_geometric.nn`, so
    that configs and ``--param conv=LEConv`` can choose a layer (it is
    checked by :func:`check_conv` when the model is built)."""
    import torch_geometric.nn as pyg_nn

    import ltc_pyg.nn.conv as ours
    for module in (ours, pyg_nn):
        layer = getattr(module, name, None)
        if isinstance(layer, type) and issubclass(layer, MessagePassing):
            return layer
    raise ValueError(f"Unknown convolution '{name}': give a MessagePassing "
                     f"class of ltc_pyg.nn.conv or torch_geometric.nn by "
                     f"name, e.g. 'GraphConv', 'LEConv' or 'DSConv'")


class ConvHook:
    r"""The models' ``init_conv`` hook (PyG's ``BasicGNN.init_conv``): a
    layer from the ``conv`` factory the model was given, stored as
    ``conv_factory``; subclasses may override it instead."""
    conv_factory: ConvFactory

    def init_conv(self, in_channels: int, out_channels: int
                  ) -> MessagePassing:
        r"""The convolution ``in_channels -> out_channels``."""
        return self.conv_factory(in_channels, out_channels)


def _probe_adjacency(values: list[float]) -> Tensor:
    r"""A ``[2, 3]`` CSR adjacency: target 0 <- sources 0, 1; target 1 <-
    sources 1, 2."""
    with quiet_sparse_warnings():
        return torch.sparse_csr_tensor(torch.tensor([0, 2, 4]),
                                       torch.tensor([0, 1, 1, 2]),
                                       torch.tensor(values), (2, 3),
                                       check_invariants=True)


def _probe(conv: torch.nn.Module, x: Tensor, adj_t: Tensor,
           bipartite: bool) -> Tensor:
    if bipartite:
        return conv((x, x[:2]), adj_t)
    square = torch.cat([adj_t.to_dense(), torch.zeros(1, 3)]).to_sparse_csr()
    return conv(x, square)[:2]


def check_conv(conv: torch.nn.Module, in_channels: int, out_channels: int,
               owner: str, bipartite: bool = False) -> None:
    r"""Checks that ``conv`` can serve as a layer of model ``owner``: it
    takes ``(x, edge_index, edge_weight)`` in that order, aggregates over a
    sparse ``adj_t`` (with ``bipartite``, also a ``(x_src, x_dst)`` pair and
    a rectangular ``adj_t``), returns ``[N, out_channels]`` and uses the
    edge weights. It runs the layer once on three nodes, in evaluation
    mode and without gradients; the caller's random state is not used.

    Raises:
        ValueError: naming the layer, the model and what is missing.
    """
    name = f'{type(conv).__name__} as a layer of {owner}'
    params = list(inspect.signature(conv.forward).parameters)
    if params[1:3] != ['edge_index', 'edge_weight']:
        raise ValueError(f'{name}: its forward must take (x, edge_index, '
                         f'edge_weight, ...) (got ({", ".join(params)})); '
                         f'the models pass edge weights third')
    x = torch.linspace(-1, 1, 3 * in_channels).view(3, in_channels)
    x = x * torch.tensor([[1.0], [-2.0], [0.5]])
    training = conv.training
    conv.eval()
    try:
        with torch.no_grad():
            outs = [_probe(conv, sign * x, _probe_adjacency(values),
                           bipartite)
                    for values in ([0.5, 0.5, 0.5, 0.5],
                                   [0.9, 0.1, 0.2, 0.8])
                    for sign in (1, -1)]
    except Exception as error:  # any failure means the layer cannot serve
        need = ('a bipartite (x_src, x_dst) input with a sparse [N_dst, '
                'N_src] adj_t' if bipartite else 'a sparse adj_t')
        raise ValueError(f'{name}: it must accept {need} (the pipeline '
                         f'aggregates by sparse matmul); it failed with '
                         f'{type(error).__name__}: {error}') from None
    finally:
        conv.train(training)
    if tuple(outs[0].shape) != (2, out_channels):
        raise ValueError(f'{name}: expected an output of shape '
                         f'(2, {out_channels}) for 2 target nodes (got '
                         f'{tuple(outs[0].shape)})')
    if all(torch.equal(a, b) for a, b in zip(outs[:2], outs[2:], strict=True)):
        raise ValueError(f'{name}: its output does not change with the edge '
                         f'weights, which carry the affinities')


def conv_stack(init_conv: ConvFactory, sizes: Sequence[int], owner: str
               ) -> torch.nn.ModuleList:
    r"""Layers ``sizes[0] -> sizes[1] -> ...`` from ``init_conv``, each
    checked by :func:`check_conv` (square inputs)."""
    convs = torch.nn.ModuleList()
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        conv = init_conv(a, b)
        check_conv(conv, a, b, owner)
        convs.append(conv)
    return convs
