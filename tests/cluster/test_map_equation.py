import gc
import subprocess
import sys
import weakref

import numpy as np
import pytest
import torch

from ltc_pyg.cluster import map_equation
from ltc_pyg.cluster.map_equation import map_equation_clusters
from ltc_pyg.graph.components import relabel_by_first_appearance

# Two directed 3-cycles with strong links, joined by one weak link each way.
EDGE_INDEX = torch.tensor([[0, 1, 2, 3, 4, 5, 2, 3],
                           [1, 2, 0, 4, 5, 3, 3, 2]])
EDGE_WEIGHT = torch.tensor([1.0] * 6 + [0.05, 0.05])


@pytest.mark.parametrize('directed', [True, False])
def test_two_communities_and_an_isolated_node(directed):
    labels = map_equation_clusters(EDGE_INDEX, EDGE_WEIGHT, num_nodes=7,
                                   directed=directed)
    assert labels.dtype == np.int64
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2]


def test_the_model_is_freed_on_return(monkeypatch):
    # An Infomap model and its result refer to each other; the network they
    # hold (~100 B per link) must not wait for the garbage collector.
    models = []
    Infomap = map_equation._infomap_class()

    class Recorded(Infomap):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            models.append(weakref.ref(self))

    monkeypatch.setattr(map_equation, '_infomap_class', lambda: Recorded)
    gc.disable()
    try:
        labels = map_equation_clusters(EDGE_INDEX, EDGE_WEIGHT, num_nodes=7)
        assert len(models) == 1 and models[0]() is None
    finally:
        gc.enable()
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2]


def test_weights_decide_the_partition():
    # The same links with the bridge as strong as the cycles: one module.
    labels = map_equation_clusters(EDGE_INDEX, torch.ones(8), num_nodes=6)
    assert labels.tolist() == [0] * 6


@pytest.mark.parametrize('directed', [True, False])
def test_links_in_blocks_equal_infomaps_own_adapter(directed, monkeypatch):
    # Infomap's edge_index adapter adds the links one by one (and, when
    # undirected, one per pair with the larger weight); the package hands
    # them over in numpy blocks: the partition must not change.
    import faiss  # noqa: F401  (before infomap, see map_equation._partition)
    from infomap import Infomap

    gen = torch.Generator().manual_seed(0)
    group = torch.arange(60) // 12
    edge_index = torch.randint(0, 60, (2, 900), generator=gen)
    same = group[edge_index[0]] == group[edge_index[1]]
    edge_index = edge_index[:, (edge_index[0] != edge_index[1])
                            & (same | (torch.rand(900, generator=gen) < 0.1))]
    edge_weight = torch.rand(edge_index.size(1), generator=gen) + 0.1
    model = Infomap(two_level=True, directed=directed, num_trials=1, seed=4)
    model.add_edge_index(edge_index.numpy(), edge_weight.double().numpy(),
                         num_nodes=62, directed=directed)
    modules = model.run().modules()
    expected = np.full(62, -1)
    expected[list(modules.keys())] = list(modules.values())
    monkeypatch.setattr(map_equation, 'LINK_BLOCK', 100)
    labels = map_equation_clusters(edge_index, edge_weight, 62,
                                   directed=directed, seed=3)
    assert labels.max() >= 6  # the five groups at least, and the 2 loners
    assert labels.tolist() == relabel_by_first_appearance(expected).tolist()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r'shape \[2, num_edges\]'):
        map_equation_clusters(EDGE_INDEX.t(), None, 6)
    with pytest.raises(ValueError, match=r"'edge_weight' of shape \[8\]"):
        map_equation_clusters(EDGE_INDEX, torch.ones(3), 6)
    with pytest.raises(ValueError, match='must be positive'):
        map_equation_clusters(EDGE_INDEX, EDGE_WEIGHT - 0.5, 6)
    with pytest.raises(ValueError, match=r'outside \[0, 5\)'):
        map_equation_clusters(EDGE_INDEX, None, 5)


@pytest.mark.parametrize('first', ['faiss', 'infomap'])
def test_either_import_order_of_faiss_and_infomap(first):
    # Both are SWIG modules; with infomap imported first, reading
    # Result.modules() crashed the interpreter (segmentation fault).
    second = 'infomap' if first == 'faiss' else 'faiss'
    code = (f'import {first}, {second}, torch\n'
            'from ltc_pyg.cluster import map_equation_clusters\n'
            'e = torch.tensor([[0, 1, 2], [1, 2, 0]])\n'
            'print(map_equation_clusters(e, None, 4).tolist())\n')
    run = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-500:]
    assert run.stdout.strip() == '[0, 0, 0, 1]'
