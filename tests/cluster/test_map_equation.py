import gc
import subprocess
import sys
import weakref

import numpy as np
import pytest
import scipy.sparse as sp
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
    # In the caller's order, as the adapter numbers them (the locality
    # order may change the partition of this noisy graph).
    monkeypatch.setattr(map_equation, 'locality_order',
                        lambda adjacency: np.arange(adjacency.shape[0]))
    labels = map_equation_clusters(edge_index, edge_weight, 62,
                                   directed=directed, seed=3)
    assert labels.max() >= 6  # the five groups at least, and the 2 loners
    assert labels.tolist() == relabel_by_first_appearance(expected).tolist()


def test_the_locality_order_numbers_a_path_consecutively():
    # A path 0-1-...-9 under shuffled ids: in reverse Cuthill-McKee order,
    # each node's neighbours on the path are the nodes just before and after.
    shuffled = torch.randperm(10, generator=torch.Generator().manual_seed(1))
    path = shuffled[torch.stack([torch.arange(9), torch.arange(1, 10)])]
    both = torch.cat([path, path.flip(0)], 1).numpy()
    order = map_equation.locality_order(sp.csr_matrix(
        (np.ones(18), (both[0], both[1])), shape=(10, 10)))
    assert sorted(order.tolist()) == list(range(10))
    position = np.empty(10, dtype=np.int64)
    position[order] = np.arange(10)
    gaps = np.abs(position[path[0].numpy()] - position[path[1].numpy()])
    assert gaps.tolist() == [1] * 9


def test_labels_come_back_in_the_callers_node_ids():
    # Four 5-cliques under shuffled ids, one weak link between two of them;
    # Infomap sees the nodes renumbered, the caller gets its own ids back.
    group = torch.arange(20) // 5
    node = torch.randperm(20, generator=torch.Generator().manual_seed(2))
    pair = torch.combinations(torch.arange(20), 2).t()
    pair = pair[:, group[pair[0]] == group[pair[1]]]
    edge_index = node[torch.cat([pair, torch.tensor([[4], [5]])], 1)]
    edge_weight = torch.cat([torch.ones(pair.size(1)), torch.tensor([0.01])])
    labels = map_equation_clusters(edge_index, edge_weight, 20,
                                   directed=False)
    expected = np.empty(20, dtype=np.int64)
    expected[node.numpy()] = group.numpy()
    assert labels.tolist() == relabel_by_first_appearance(expected).tolist()


def test_kept_knn_rows_equal_their_edge_list(monkeypatch):
    # Four groups of 10; each row's 6 neighbours are mostly its own group.
    # The rows, read block by block, and the kept links as an edge list
    # give Infomap the same network in the same order.
    gen = torch.Generator().manual_seed(5)
    group = torch.arange(40) // 10
    score = torch.rand(40, 40, generator=gen) + (group.view(-1, 1)
                                                 == group.view(1, -1))
    score.fill_diagonal_(0.0)
    weight, neighbor = score.topk(6, dim=1)
    keep = weight > 0.6
    monkeypatch.setattr(map_equation, 'LINK_BLOCK', 50)  # 8 rows a block
    labels = map_equation.knn_map_equation_clusters(neighbor, weight, keep,
                                                    seed=2)
    row, column = keep.nonzero(as_tuple=True)
    expected = map_equation_clusters(
        torch.stack([row, neighbor[row, column]]), weight[keep], 40, seed=2)
    assert labels.tolist() == expected.tolist()
    assert labels.max() >= 3


def test_bad_knn_rows_are_named():
    neighbor = torch.tensor([[1, 2], [0, 2], [0, 1]])
    weight, keep = torch.ones(3, 2), torch.ones(3, 2, dtype=torch.bool)
    run = map_equation.knn_map_equation_clusters
    with pytest.raises(ValueError, match='of one shape'):
        run(neighbor, weight[:2], keep)
    with pytest.raises(ValueError, match='of one shape'):
        run(neighbor, weight, keep.float())
    with pytest.raises(ValueError, match='positive where kept'):
        run(neighbor, weight - 1.0, keep)
    with pytest.raises(ValueError, match=r'outside \[0, 3\)'):
        run(neighbor + 1, weight, keep)
    # A non-positive weight on a dropped slot is never walked.
    keep[0, 0] = False
    weight[0, 0] = 0.0
    assert run(neighbor, weight, keep).tolist() == [0, 0, 0]


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


def _noisy_network(directed: bool) -> sp.csr_matrix:
    # Five groups of 12 with 10% stray links and two nodes with no out-link
    # (60 and 61 join only through in-links); directed, also a self-link.
    gen = np.random.default_rng(7)
    source = gen.integers(0, 60, 700)
    target = gen.integers(0, 62, 700)
    stray = gen.random(700) < 0.1
    linked = (source // 12 == target // 12) | stray | (target >= 60)
    source, target = source[linked], target[linked]
    weight = gen.random(source.size) + 0.1
    if directed:
        source, target = np.append(source, 5), np.append(target, 5)
        weight = np.append(weight, 2.0)
    else:
        source, target = (np.concatenate([source, target]),
                          np.concatenate([target, source]))
        weight = np.concatenate([weight, weight])
    return sp.csr_matrix((weight, (source, target)), shape=(62, 62))


def _infomap_run(adjacency: sp.csr_matrix, directed: bool,
                 markov_time: float = 1.0, **options):
    Infomap = map_equation._infomap_class()
    from infomap import Options

    model = Infomap(two_level=True, directed=directed, silent=True,
                    num_trials=1, seed=1, markov_time=markov_time,
                    options=Options(**options))
    model.add_nodes(range(adjacency.shape[0]))
    links = adjacency.tocoo()
    if not directed:  # Infomap's undirected links: each pair once
        upper = links.row <= links.col
        links = sp.coo_matrix((links.data[upper], (links.row[upper],
                                                   links.col[upper])))
    model.add_links(np.stack([links.row, links.col, links.data], axis=1))
    return model


@pytest.mark.parametrize('directed', [True, False])
def test_link_flow_is_infomaps_own(directed):
    adjacency = _noisy_network(directed)
    result = _infomap_run(adjacency, directed).run()
    expected = np.zeros((62, 62))
    for source, target, flow in result.links(data='flow'):
        expected[source, target] += flow
        if not directed and source != target:
            expected[source, target] -= flow / 2  # half of it each way
            expected[target, source] += flow / 2
    node_flow = np.zeros(62)
    for node in result.nodes():
        node_flow[node.node_id] = node.flow
    flow, flow_of_nodes = map_equation.link_flow(adjacency.copy(), directed)
    assert np.abs(flow.toarray() - expected).max() < 1e-12
    assert np.abs(flow_of_nodes - node_flow).max() < 1e-12
    assert flow.sum() == pytest.approx(1.0)


def test_strongest_link_groups_need_reciprocated_links():
    # 1 <-> 0 (0.9) joins 0 and 1. 2 -> 0 (0.95) is the strongest link of
    # both 0 and 2 but one way: 2 stays out. 3's strongest, 2 -> 3 (0.5), is
    # one way too, but 4's, 3 <-> 4 (0.3), joins them (4's self-link does
    # not count); 5 has no link.
    source = [0, 1, 2, 2, 3, 4, 4]
    target = [1, 0, 3, 0, 4, 3, 4]
    weight = [0.9, 0.9, 0.5, 0.95, 0.3, 0.3, 5.0]
    adjacency = sp.csr_matrix((weight, (source, target)), shape=(6, 6))
    group = map_equation.strongest_link_groups(adjacency)
    assert group.dtype == np.int64
    assert group.tolist() == [0, 0, 1, 2, 2, 3]


@pytest.mark.parametrize('directed', [True, False])
def test_partition_codelength_is_infomaps_own(directed):
    adjacency = _noisy_network(directed)
    flow, node_flow = map_equation.link_flow(adjacency.copy(), directed)
    for parts in (1, 3, 5, 62):
        labels = np.arange(62) % parts
        result = _infomap_run(adjacency, directed, no_infomap=True).run(
            initial_partition=dict(enumerate(labels.tolist())))
        assert map_equation.partition_codelength(
            flow, node_flow, labels) == pytest.approx(result.codelength,
                                                      abs=1e-9)
    # One module: the entropy of the visit rates; the five groups of 12
    # (and the two in-link-only nodes with the last) describe it shorter.
    one = map_equation.partition_codelength(flow, node_flow,
                                            np.zeros(62, dtype=np.int64))
    assert one == pytest.approx(-(node_flow * np.log2(node_flow)).sum())
    groups = np.minimum(np.arange(62) // 12, 4)
    assert map_equation.partition_codelength(flow, node_flow, groups) < one


@pytest.mark.parametrize('directed', [True, False])
@pytest.mark.parametrize('markov_time', [1.0, 2.0])
def test_groups_keep_the_map_equation_of_their_nodes(directed, markov_time):
    # Two partitions of the groups differ in description length, in the
    # grouped network, by exactly as many bits as the same partitions of
    # their nodes: the two map equations differ by a constant (the entropy
    # of the visits within each group), so both rank partitions alike.
    adjacency = _noisy_network(directed)
    group, flow, node_flow = map_equation._grouped_network(adjacency.copy(),
                                                          directed)
    assert 5 < node_flow.size < 62 and node_flow.sum() == pytest.approx(1.0)
    lengths = []
    for parts in (4, 3):
        grouped = map_equation._precomputed_model(
            flow, node_flow, markov_time=markov_time, no_infomap=True).run(
            initial_partition={g: g % parts for g in range(node_flow.size)})
        nodes = _infomap_run(adjacency, directed, markov_time=markov_time,
                             no_infomap=True).run(
            initial_partition={i: g % parts
                               for i, g in enumerate(group.tolist())})
        assert grouped.num_top_modules == nodes.num_top_modules == parts
        lengths.append((grouped.codelength, nodes.codelength))
    (grouped_4, nodes_4), (grouped_3, nodes_3) = lengths
    assert abs(nodes_4 - nodes_3) > 0.01
    assert grouped_4 - grouped_3 == pytest.approx(nodes_4 - nodes_3,
                                                  abs=1e-9)


@pytest.mark.parametrize('directed', [True, False])
def test_the_grouped_walk_finds_the_communities(directed):
    labels = map_equation_clusters(EDGE_INDEX, EDGE_WEIGHT, num_nodes=7,
                                   directed=directed, coarsen_above=0)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2]


def test_large_knn_rows_walk_groups(monkeypatch):
    # Four groups of 10 under shuffled ids: above coarsen_above the rows go
    # to the grouped walk, with the same communities.
    gen = torch.Generator().manual_seed(5)
    group = torch.arange(40)[torch.randperm(40, generator=gen)] // 10
    score = torch.rand(40, 40, generator=gen) + 2 * (group.view(-1, 1)
                                                     == group.view(1, -1))
    weight, neighbor = score.topk(8, dim=1)  # column 0: the node itself
    keep = weight > 1.0
    walked = []
    grouped = map_equation._grouped_partition
    monkeypatch.setattr(map_equation, '_grouped_partition',
                        lambda *args: walked.append(1) or grouped(*args))
    labels = map_equation.knn_map_equation_clusters(neighbor, weight, keep,
                                                    coarsen_above=100)
    assert walked == [1]
    expected = relabel_by_first_appearance(group.numpy())
    assert labels.tolist() == expected.tolist()
