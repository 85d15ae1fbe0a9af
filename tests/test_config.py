from dataclasses import dataclass

import pytest

from ltc_pyg.config import KNNConfig, RunConfig, from_dict, load_config


@dataclass(frozen=True)
class Inner:
    size: int = 1
    rate: float = 0.5


@dataclass(frozen=True)
class Outer:
    name: str = 'x'
    inner: Inner = Inner()
    steps: tuple[int, ...] = (1, 2)
    threshold: float | None = None


def test_from_dict_nested_and_converted():
    config = from_dict(Outer, {'inner': {'rate': 1}, 'steps': [3, 4],
                               'threshold': 0.7})
    assert config == Outer(inner=Inner(rate=1.0), steps=(3, 4),
                           threshold=0.7)
    assert isinstance(config.inner.rate, float)


@pytest.mark.parametrize('raw, error, match', [
    ({'nmae': 'y'}, ValueError, r"Unknown keys for Outer: \['nmae'\]"),
    ({'inner': {'size': 'big'}}, TypeError, 'inner.size: expected int'),
    ({'inner': {'size': True}}, TypeError, 'inner.size: expected int'),
    ({'steps': 3}, TypeError, 'steps: expected a list'),
])
def test_from_dict_rejects(raw, error, match):
    with pytest.raises(error, match=match):
        from_dict(Outer, raw)


def test_knn_config_checks():
    with pytest.raises(ValueError, match='knn.k must be at least 1'):
        KNNConfig(k=0)
    with pytest.raises(ValueError, match="method must be one of"):
        from_dict(KNNConfig, {'method': 'lsh'})


def test_knn_config_as_searched():
    assert KNNConfig().searched(200_000) == KNNConfig(method='flat')
    assert KNNConfig().searched(200_001) == KNNConfig(method='blocked',
                                                      num_probes=128)
    assert KNNConfig(method='ivf').searched(10).num_probes == 64
    assert KNNConfig(method='ivf', num_probes=7).searched(10).num_probes == 7


def test_load_config(tmp_path):
    path = tmp_path / 'run.yaml'
    path.write_text('method: knn-threshold\nseed: 3\n'
                    'knn: {k: 20, method: hnsw}\nparams: {threshold: 0.6}\n')
    assert load_config(path) == RunConfig(
        method='knn-threshold', knn=KNNConfig(k=20, method='hnsw'),
        params={'threshold': 0.6}, seed=3)
    path.write_text('method: x\nknn: {kk: 3}\n')
    with pytest.raises(ValueError, match=r"run.yaml: Unknown keys for knn: "
                       r"\['kk'\]"):
        load_config(path)
    path.write_text('- a list\n')
    with pytest.raises(ValueError, match="at least 'method'"):
        load_config(path)
    with pytest.raises(FileNotFoundError, match='missing.yaml'):
        load_config(tmp_path / 'missing.yaml')


def test_every_shipped_config_loads():
    from pathlib import Path

    from ltc_pyg.pipelines.methods import get_method
    configs = sorted((Path(__file__).parents[1] / 'configs').glob('*.yaml'))
    assert configs, 'configs/ is empty'
    for path in configs:
        config = load_config(path)
        method = get_method(config.method)
        from_dict(method.Params, config.params)  # unknown keys fail
