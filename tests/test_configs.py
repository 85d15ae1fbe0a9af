from pathlib import Path

import pytest
import yaml

from ltc_pyg.config import load_config
from ltc_pyg.pipelines.methods import build_method, get_method

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / 'configs').rglob('*.yaml'))
BASELINE_CONFIGS = [path for path in CONFIGS
                    if path.parent.name == 'baselines']


def config_id(path):
    return str(path.relative_to(ROOT / 'configs'))


def test_configs_are_found():
    assert 'knn_threshold.yaml' in map(config_id, CONFIGS)
    assert len(BASELINE_CONFIGS) >= 10


@pytest.mark.parametrize('path', CONFIGS, ids=config_id)
def test_config_loads_and_builds_its_method(path):
    # The CLI's path: load_config, then the method from its params.
    config = load_config(path)
    method = build_method(config.method, config.params or None,
                          seed=config.seed)
    assert isinstance(method, get_method(config.method))
    assert path.read_text().startswith('#')  # says which row it is


@pytest.mark.parametrize('path', BASELINE_CONFIGS, ids=config_id)
def test_baseline_config_is_named_after_its_method(path):
    method, dataset = path.stem.rsplit('_', 1)
    assert load_config(path).method == method.replace('_', '-')
    assert dataset in ('ms1m', 'ytb', 'deepfashion')


@pytest.mark.parametrize('path', BASELINE_CONFIGS, ids=config_id)
def test_unknown_keys_fail(path, tmp_path):
    raw = yaml.safe_load(path.read_text())
    raw['params']['nope'] = 1
    (tmp_path / 'param.yaml').write_text(yaml.safe_dump(raw))
    config = load_config(tmp_path / 'param.yaml')
    with pytest.raises(ValueError, match=r"Unknown keys for .* params: "
                       r"\['nope'\]"):
        build_method(config.method, config.params)
    del raw['params']['nope']
    raw['knn']['nope'] = 1
    (tmp_path / 'knn.yaml').write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=r"Unknown keys for knn: "
                       r"\['nope'\]"):
        load_config(tmp_path / 'knn.yaml')
