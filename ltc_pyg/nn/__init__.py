r"""Graph neural network building blocks: ``conv/`` holds the
:class:`~torch_geometric.nn.conv.MessagePassing` layers, ``models/`` the
models of the learn-to-cluster papers (GCN-D, GCN-S, GCN-V, GCN-E, L-GCN)."""
