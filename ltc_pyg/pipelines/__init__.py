r"""Training and clustering pipelines, the method registry, reports and the
CLI."""
from ltc_pyg.pipelines.checkpoint import load_method, save_checkpoint
from ltc_pyg.pipelines.methods import (
    METHODS,
    ClusteringMethod,
    build_method,
    get_method,
)
from ltc_pyg.pipelines.report import StageTimer
from ltc_pyg.pipelines.run import (
    ClusterResult,
    build_graph,
    cluster,
    make_method,
    train,
)

__all__ = [
    'METHODS', 'ClusteringMethod', 'get_method', 'build_method',
    'save_checkpoint', 'load_method', 'StageTimer', 'ClusterResult',
    'build_graph', 'cluster', 'make_method', 'train',
]
