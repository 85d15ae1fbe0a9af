r"""Classic clustering baselines on features or on the kNN affinity graph."""

__all__: list[str] = []
