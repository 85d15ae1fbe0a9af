r"""The models of the learn-to-cluster family, one module each, built from
message-passing layers and usable in any PyG workflow."""

__all__: list[str] = []
