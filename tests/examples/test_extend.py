import importlib.util
import re
import sys
from pathlib import Path

import pytest

from ltc_pyg.nn.models import GCNV

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def example():
    spec = importlib.util.spec_from_file_location(
        'extend', ROOT / 'examples' / 'extend.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules['extend'] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules['extend']


def test_the_readme_shows_the_example_as_it_runs():
    source = (ROOT / 'examples' / 'extend.py').read_text()
    readme = (ROOT / 'README.md').read_text()
    blocks = re.findall(r'<!-- examples/extend.py -->\n```python\n(.*?)```',
                        readme, flags=re.S)
    assert len(blocks) == 2
    for block in blocks:
        assert block in source


def test_custom_layer_and_new_method_train_and_cluster(example):
    scores = example.main(['--identities', '8', '--steps', '10'])
    assert set(scores) == {'my-gcn-v', 'pair-mlp'}
    assert scores['my-gcn-v'] > 0.5 and scores['pair-mlp'] > 0.2


def test_the_custom_layer_replaces_graph_conv(example):
    model = GCNV(8, 4, conv=example.WeightedSumConv)
    assert isinstance(model.conv, example.WeightedSumConv)
