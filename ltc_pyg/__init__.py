r"""ltc_pyg: learning to cluster face embeddings on kNN affinity graphs,
natively in PyTorch Geometric.

The layout follows the pipeline::

    data/       read/write/check features, labels, kNN files; synthetic data
    graph/      faiss kNN search, affinity-graph transforms, the dataset
    proposals/  cluster proposals and pivot subgraphs as batched Data
    nn/         MessagePassing layers (conv/) and models (models/)
    cluster/    sparse merging: components, thresholds, de-overlap
    metrics/    pairwise F, BCubed F, NMI
    pipelines/  methods registry, train / cluster, reports, the CLI
"""
__version__ = '0.1.0'
