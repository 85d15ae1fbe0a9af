import pytest
import torch
from torch.nn import Linear, PReLU, Sequential
from torch_geometric.nn import (
    GCNConv,
    GraphConv,
    LEConv,
    MessagePassing,
    SAGEConv,
)

from ltc_pyg.nn.conv import DSConv, check_conv, conv_by_name
from ltc_pyg.nn.models import GCND, GCNE, GCNV, LGCN
from ltc_pyg.pipelines.methods import build_method


class UnweightedSum(MessagePassing):
    r"""Sums neighbours but drops the affinities."""
    def __init__(self, in_channels, out_channels):
        super().__init__(aggr='add')
        self.lin = Linear(in_channels, out_channels)

    def forward(self, x, edge_index, edge_weight=None):
        return self.lin(self.propagate(edge_index, x=x))

    def message_and_aggregate(self, adj_t, x):
        return (adj_t.to_dense() != 0).to(x.dtype) @ x


def test_layers_that_fit_pass():
    check_conv(GraphConv(4, 3), 4, 3, 'GCNV', bipartite=True)
    check_conv(DSConv(4, 3), 4, 3, 'GCND')


@pytest.mark.parametrize('model,conv,match', [
    (GCNV, SAGEConv, r'SAGEConv as a layer of GCNV: its forward must take '
     r'\(x, edge_index, edge_weight, ...\) \(got \(x, edge_index, size\)\)'),
    (GCNV, GCNConv, r'GCNConv as a layer of GCNV: it must accept a '
     r'bipartite \(x_src, x_dst\) input'),
    (GCNE, UnweightedSum, 'UnweightedSum as a layer of GCNE: its output '
     'does not change with the edge weights'),
])
def test_unfit_layers_fail_when_the_model_is_built(model, conv, match):
    with pytest.raises(ValueError, match=match):
        model(8, 4, conv=conv)


def test_every_model_takes_its_convolution():
    assert all(isinstance(conv, GraphConv)
               for conv in GCNE(8, 4, conv=GraphConv).convs)
    assert isinstance(LGCN(8, (4, 2), conv=GraphConv).convs[1], GraphConv)
    assert isinstance(GCND(8, (4, ), conv=GraphConv).convs[0], GraphConv)


def test_the_check_leaves_initialisation_unchanged():
    torch.manual_seed(0)
    model = GCNV(8, 4)
    torch.manual_seed(0)
    conv = GraphConv(8, 4, aggr='add')
    head = Sequential(Linear(4, 4), PReLU(4), Linear(4, 1))
    expected = {**{f'conv.{k}': v for k, v in conv.state_dict().items()},
                **{f'head.{k}': v for k, v in head.state_dict().items()}}
    for key, value in model.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_methods_choose_their_layer_by_name():
    assert conv_by_name('LEConv') is LEConv
    assert conv_by_name('DSConv') is DSConv
    with pytest.raises(ValueError, match="Unknown convolution 'Nope'"):
        conv_by_name('Nope')
    method = build_method('gcn-v', {'hidden_channels': 4, 'conv': 'LEConv'})
    assert isinstance(method.build(8).conv, LEConv)
    with pytest.raises(ValueError, match='SAGEConv as a layer of GCNV'):
        build_method('gcn-v', {'conv': 'SAGEConv'}).build(8)
    lgcn = build_method('lgcn', {'hidden_channels': [4], 'conv': 'LEConv'})
    assert isinstance(lgcn.build(8).convs[0], LEConv)
