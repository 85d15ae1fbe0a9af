"""Writes a version-1 ``learned-edges`` checkpoint (written by commit
1691d01, before the method moved onto the training framework) and its
labels, for tests/pipelines/test_training.py. Run with that commit on
PYTHONPATH: ``python make_v1_edges.py tests/pipelines/data``."""
import sys
from pathlib import Path

import numpy as np

from ltc_pyg.config import KNNConfig
from ltc_pyg.data.synthetic import make_splits
from ltc_pyg.pipelines.run import build_graph, train

out = Path(sys.argv[1])
split = make_splits(num_train_identities=1, num_test_identities=4, dim=8,
                    mean_size=8, spread=0.5, low_quality_fraction=0.0,
                    seed=0)['test']
graph = build_graph(split.x, KNNConfig(k=6), split.labels)
method = train(graph, 'learned-edges',
               {'hidden_channels': 4, 'train': {'steps': 3, 'batch_size': 8}},
               out=out / 'learned-edges.pt', knn=KNNConfig(k=6))
np.save(out / 'learned-edges-labels.npy', method.predict(graph))
