r"""L-GCN, the linkage predictor of "Linkage Based Face Clustering via Graph
Convolution Network" (`Wang et al., CVPR 2019
<https://arxiv.org/abs/1903.11306>`_)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import BatchNorm1d, Linear, PReLU, Sequential
from torch_geometric.nn import GraphConv
from torch_geometric.typing import Adj, OptTensor

from ltc_pyg.graph.sparse import adjacency_rows, csr_arrays
from ltc_pyg.nn.conv.requirements import (
    ConvFactory,
    ConvHook,
    conv_stack,
)
from ltc_pyg.nn.models.gcn_v import convert_graph_conv

__all__ = ['LGCN', 'convert_original_lgcn', 'graph_conv']


class LGCN(ConvHook, torch.nn.Module):
    r"""Predicts, on instance pivot subgraphs
    (:class:`~ltc_pyg.proposals.PivotSubgraphs`), whether each one-hop node
    belongs to its pivot's identity.

    Inputs are batch-normalised (no affine part), then passed through graph
    convolutions

    .. math::
        \mathbf{h}^{(l+1)}_i = \mathrm{ReLU}\big(\mathbf{W}^{(l)}
        [\mathbf{h}^{(l)}_i \,\|\, \textstyle\sum_j a_{ij}
        \mathbf{h}^{(l)}_j] + \mathbf{b}^{(l)}\big)

    with row-normalised weights :math:`a_{ij}` (PyG's
    :class:`~torch_geometric.nn.conv.GraphConv`, ``aggr='add'``), and a
    classifier :math:`\mathrm{Linear}\to\mathrm{PReLU}\to\mathrm{Linear}`
    gives two logits (not linked, linked) per one-hop node.

    Subgraphs are concatenated, not padded, so in training the batch
    statistics of the input normalisation cover real nodes only (the
    original's padded batches also counted the zero padding rows); in
    evaluation both use the running statistics and agree.

    Inference over many pivots of one graph has an exact shortcut
    (:meth:`project`, :meth:`pivot_forward`). Subgraph features are
    :math:`\mathbf{x}_j - \mathbf{x}_p`; the evaluation-mode normalisation
    :math:`n(\mathbf{x}) = (\mathbf{x} - \boldsymbol\mu) / \boldsymbol\sigma`
    is affine, so :math:`n(\mathbf{x}_j - \mathbf{x}_p) = n(\mathbf{x}_j) -
    n(\mathbf{x}_p) + n(\mathbf{0})`, and the first convolution's linear maps
    commute with its (linear) aggregation:

    .. math::
        \mathbf{W} n(\mathbf{x}_j - \mathbf{x}_p) = \mathbf{P}_j -
        \mathbf{P}_p + \mathbf{W} n(\mathbf{0}),
        \qquad \mathbf{P} = n(\mathbf{X}) \mathbf{W}^\top

    with :math:`\mathbf{P}` computed once for the whole graph rather than
    once per subgraph a node is in (~240 subgraphs at the original
    settings). The last convolution runs on the one-hop rows only. Both
    need a stack of :class:`~torch_geometric.nn.conv.GraphConv` with
    ``'add'`` aggregation (:attr:`projectable`).

    Args:
        in_channels (int, optional): Feature size. (default: ``256``)
        hidden_channels (sequence of int, optional): Output sizes of the graph
            convolutions. (default: ``(512, 512, 256, 256)``)
        conv (callable, optional): Builds each convolution,
            ``conv(in, out)`` (see :class:`~ltc_pyg.nn.models.GCNV`).
            (default: :class:`~torch_geometric.nn.conv.GraphConv`)

    Shapes:
        - **input:** ``x`` :math:`(N, F_{in})`; ``edge_index``
          :math:`(2, E)` or sparse ``adj_t`` :math:`(N, N)`;
          ``one_hop_index`` :math:`(M)`; ``edge_weight`` :math:`(E)`
        - **output:** logits :math:`(M, 2)`
    """
    def __init__(self, in_channels: int = 256,
                 hidden_channels: Sequence[int] = (512, 512, 256, 256),
                 conv: ConvFactory = GraphConv) -> None:
        super().__init__()
        hidden_channels = tuple(hidden_channels)
        if not hidden_channels:
            raise ValueError("'hidden_channels' needs at least one size")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.norm = BatchNorm1d(in_channels, affine=False)
        sizes = (in_channels, ) + hidden_channels
        self.conv_factory = conv
        self.convs = conv_stack(self.init_conv, sizes, 'LGCN')
        out = hidden_channels[-1]
        self.head = Sequential(Linear(out, out), PReLU(out), Linear(out, 2))

    def reset_parameters(self) -> None:
        self.norm.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()
        for layer in self.head:
            if hasattr(layer, 'reset_parameters'):
                layer.reset_parameters()

    def embed(self, x: Tensor, edge_index: Adj,
              edge_weight: OptTensor = None) -> Tensor:
        r"""The node features after the last graph convolution,
        :math:`(N, F_{out})`."""
        x = self.norm(x)
        for conv in self.convs:
            x = conv(x, edge_index, edge_weight).relu()
        return x

    def forward(self, x: Tensor, edge_index: Adj, one_hop_index: Tensor,
                edge_weight: OptTensor = None) -> Tensor:
        hidden = self.embed(x, edge_index, edge_weight)
        return self.head(hidden[one_hop_index])

    @property
    def projectable(self) -> bool:
        r"""Whether :meth:`project` and :meth:`pivot_forward` apply: every
        convolution a :class:`~torch_geometric.nn.conv.GraphConv` with
        ``'add'`` (``'sum'``) aggregation."""
        return all(type(conv) is GraphConv and conv.aggr in ('add', 'sum')
                   for conv in self.convs)

    def _first_weight(self) -> Tensor:
        r"""``[2 F_1, F_in]``: the first convolution's relation and root
        weights, stacked."""
        first = self.convs[0]
        return torch.cat([first.lin_rel.weight, first.lin_root.weight])

    @torch.no_grad()
    def project(self, x: Tensor, batch_size: int = 65536) -> Tensor:
        r"""The first convolution's linear maps of the normalised features
        of every graph node, :math:`[n(\mathbf{X}) \mathbf{W}_{rel}^\top
        \,\|\, n(\mathbf{X}) \mathbf{W}_{root}^\top]` ``[N, 2 F_1]``
        (``batch_size`` rows at a time, into one preallocated output; no
        gradient), for :meth:`pivot_forward`.

        Raises:
            ValueError: in training mode (the normalisation must use its
                running statistics) or when not :attr:`projectable`.
        """
        if self.training or not self.projectable:
            raise ValueError(f'LGCN.project needs evaluation mode and a '
                             f"stack of GraphConv with 'add' aggregation "
                             f'(training={self.training}, convs='
                             f'{[type(c).__name__ for c in self.convs]})')
        weight = self._first_weight().T
        projected = x.new_empty(x.size(0), weight.size(1))
        for start in range(0, x.size(0), batch_size):
            rows = slice(start, start + batch_size)
            torch.matmul(self.norm(x[rows]), weight, out=projected[rows])
        return projected

    def pivot_forward(self, projected: Tensor, n_id: Tensor, pivot: Tensor,
                      adj_t: Tensor, one_hop_index: Tensor) -> Tensor:
        r"""The logits of :meth:`forward` on pivot subgraphs (features
        :math:`\mathbf{x}_j - \mathbf{x}_p`), from :meth:`project`'s output
        instead of the features (see the class docstring).

        The first layer is one sparse product with the projected table seen
        as ``[2 N, F_1]`` (relation and root rows interleaved): row
        :math:`j` holds :math:`a_{ji}` at the relation rows of its
        neighbours :math:`i`, :math:`-\sum_i a_{ji}` at that of its pivot,
        and :math:`\pm 1` at the root rows of itself and its pivot, so no
        ``[M, 2 F_1]`` gather is materialised.

        Args:
            projected (Tensor): ``[N, 2 F_1]``, :meth:`project` of the graph.
            n_id (Tensor): ``[M]`` global id of each subgraph node.
            pivot (Tensor): ``[M]`` global id of each node's pivot.
            adj_t (Tensor): Sparse CSR ``[M, M]`` block-diagonal adjacency
                of the subgraphs (weights in its values).
            one_hop_index (Tensor): ``[K]`` positions of the one-hop nodes.

        Returns:
            Tensor: ``[K, 2]`` logits, those of ``forward(x[n_id] -
            x[pivot], adj_t, one_hop_index)``.
        """
        first = self.convs[0]
        channels = first.lin_rel.out_channels
        rowptr, col, value = csr_arrays(adj_t)
        num_rows = rowptr.numel() - 1
        count = rowptr[1:] - rowptr[:-1]
        row = torch.repeat_interleave(
            torch.arange(num_rows, device=value.device), count)
        row_sum = value.new_zeros(num_rows).index_add_(0, row, value)
        # Each row keeps its entries and gets three more at its end.
        extended = rowptr + 3 * torch.arange(num_rows + 1,
                                             device=rowptr.device)
        columns = col.new_empty(int(extended[-1]))
        values = value.new_empty(columns.numel())
        kept = torch.arange(col.numel(), device=col.device) + 3 * row
        columns[kept], values[kept] = 2 * n_id[col], value
        end = extended[1:]
        columns[end - 3], values[end - 3] = 2 * pivot, -row_sum
        columns[end - 2], values[end - 2] = 2 * n_id + 1, 1.0
        columns[end - 1], values[end - 1] = 2 * pivot + 1, -1.0
        shift = self.norm(projected.new_zeros(1, self.in_channels)) @ (
            self._first_weight().T)
        x = aggregate(extended, columns, values, projected.view(-1, channels))
        x.addcmul_(row_sum.view(-1, 1), shift[:, :channels])
        x.add_(shift[:, channels:] + first.lin_rel.bias).relu_()
        if len(self.convs) == 1:
            return self.head(x[one_hop_index])
        for conv in self.convs[1:-1]:
            x = graph_conv(conv, x, x, adj_t).relu_()
        rows, columns = adjacency_rows(adj_t, one_hop_index)
        x = graph_conv(self.convs[-1], x[columns], x[one_hop_index],
                       rows).relu_()
        return self.head(x)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'hidden_channels={self.hidden_channels})')


def convert_original_lgcn(state_dict: dict[str, Tensor]
                          ) -> dict[str, Tensor]:
    r"""Maps the original ``lgcn`` state dict (``bn0``, ``conv1..4`` with
    ``(2 in, out)`` weights applied as ``[x || Ax] @ W + b``,
    ``classifier.{0,1,2}``) onto :class:`~ltc_pyg.nn.models.LGCN`."""
    convs = sorted((key for key in state_dict
                    if key.startswith('conv') and key.endswith('.weight')),
                   key=lambda key: int(key[4:-7]))
    if not convs or 'bn0.running_mean' not in state_dict:
        raise ValueError(f"Not an original lgcn state dict: expected 'bn0.*' "
                         f"and 'conv<i>.weight' keys (got "
                         f'{sorted(state_dict)})')
    converted = {}
    for key, value in state_dict.items():
        if key.startswith('bn0.'):
            converted[f'norm.{key[4:]}'] = value
        elif key.startswith('classifier.'):
            converted[f'head.{key[11:]}'] = value
    for i, key in enumerate(convs):
        converted.update(convert_graph_conv(
            state_dict[key], state_dict[f'{key[:-7]}.bias'], f'convs.{i}'))
    return converted


def aggregate(rowptr: Tensor, col: Tensor, value: Tensor, x: Tensor
              ) -> Tensor:
    r"""The sparse product :math:`\mathbf{A}\mathbf{X}` of a CSR
    ``(rowptr, col, value)`` ``[R, N]`` and a dense ``[N, F]`` as a weighted
    bag sum (:func:`torch.nn.functional.embedding_bag`, about twice as fast
    as a ``sparse_csr`` product on CPU here); ``[R, F]``."""
    return F.embedding_bag(col, x, rowptr[:-1], mode='sum',
                           per_sample_weights=value)


def graph_conv(conv: GraphConv, x_src: Tensor, x_dst: Tensor,
               adj_t: Tensor) -> Tensor:
    r"""``conv((x_src, x_dst), adj_t)`` of a
    :class:`~torch_geometric.nn.conv.GraphConv` with ``'add'``
    aggregation, aggregating after the relation weight when that narrows
    the features (:math:`\mathbf{A}(\mathbf{X}\mathbf{W}^\top) =
    (\mathbf{A}\mathbf{X})\mathbf{W}^\top`) and adding the root term
    in place."""
    weight = conv.lin_rel.weight
    rowptr, col, value = csr_arrays(adj_t)
    if x_src.size(0) <= x_dst.size(0) and weight.size(0) < weight.size(1):
        out = aggregate(rowptr, col, value, x_src @ weight.T)
    else:
        out = aggregate(rowptr, col, value, x_src) @ weight.T
    out.add_(conv.lin_rel.bias)
    return out.addmm_(x_dst, conv.lin_root.weight.T)
