r"""Subgraphs cut out of the affinity graph as small PyG ``Data`` objects,
batched with :class:`~torch_geometric.data.Batch`: cluster proposals
(super-vertices), L-GCN pivot subgraphs and GCN-E candidate subgraphs."""

__all__: list[str] = []
