import numpy as np

from ltc_pyg.data.io import read_features, read_labels
from ltc_pyg.data.synthetic import make_splits, write_split


def small(seed=0, **kwargs):
    return make_splits(num_train_identities=30, num_test_identities=20,
                       dim=32, mean_size=12, seed=seed, **kwargs)


def test_splits_are_deterministic_and_disjoint():
    first, again = small(), small()
    assert np.array_equal(first['test'].x, again['test'].x)
    assert np.array_equal(first['train'].labels, again['train'].labels)
    assert not np.array_equal(small(seed=1)['test'].x[:5],
                              first['test'].x[:5])
    train, test = set(first['train'].labels), set(first['test'].labels)
    assert train == set(range(30)) and test == set(range(30, 50))


def test_features_are_unit_rows_and_sizes_long_tailed():
    split = make_splits(num_train_identities=1, num_test_identities=400,
                        dim=16, mean_size=20, size_sigma=0.8, seed=0)['test']
    assert split.x.dtype == np.float32
    assert np.allclose(np.linalg.norm(split.x, axis=1), 1, atol=1e-5)
    sizes = np.bincount(split.labels - 1)
    assert sizes.min() >= 2 and sizes.max() > 3 * np.median(sizes)


def test_same_identity_is_more_similar():
    split = small()['test']
    sim = split.x @ split.x.T
    same = split.labels[:, None] == split.labels[None]
    off_diagonal = ~np.eye(len(split.labels), dtype=bool)
    assert sim[same & off_diagonal].mean() > sim[~same].mean() + 0.3


def test_test_split_does_not_depend_on_train_size():
    a = make_splits(num_train_identities=5, num_test_identities=10, dim=8)
    b = make_splits(num_train_identities=50, num_test_identities=10, dim=8)
    assert np.array_equal(a['test'].x, b['test'].x)


def test_write_split_uses_original_layout(tmp_path):
    split = small()['test']
    write_split(tmp_path, 'toy', split)
    assert np.array_equal(read_features(tmp_path / 'features' / 'toy.bin',
                                        32), split.x)
    assert np.array_equal(read_labels(tmp_path / 'labels' / 'toy.meta'),
                          split.labels)
