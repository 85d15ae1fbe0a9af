import numpy as np
import pytest

from ltc_pyg.cluster.threshold import otsu_threshold


@pytest.mark.parametrize('low, high', [(0.0, 0.6), (0.8, 0.95)])
def test_otsu_splits_two_modes_on_any_scale(low, high):
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(low, 0.01, 5000),
                             rng.normal(high, 0.01, 2000)])
    threshold = otsu_threshold(values)
    assert low + 0.03 < threshold < high - 0.03


def test_otsu_degenerate_inputs():
    assert otsu_threshold(np.full(10, 0.5)) == 0.5
    with pytest.raises(ValueError, match='no similarities'):
        otsu_threshold(np.array([np.nan]))
