import warnings

import numpy as np
import pytest
import torch

from ltc_pyg.graph.knn import (
    blocked_search,
    cached_knn_search,
    default_num_lists,
    fingerprint,
    knn_recall,
    knn_search,
    l2_normalize,
    resolve_knn_method,
    torch_exact_search,
)

X = np.array([[1, 0], [.9, .1], [0, 1], [.1, .9], [-1, 0]], np.float32)


def brute_force(x, k):
    x = l2_normalize(x)
    sim = x @ x.T
    order = np.argsort(-sim, axis=1, kind='stable')[:, :k]
    return order, np.take_along_axis(sim, order, axis=1)


def test_exact_search_by_hand():
    knn = knn_search(X, k=2)
    assert knn.neighbor.tolist() == [[0, 1], [1, 0], [2, 3], [3, 2], [4, 2]]
    cos01 = .9 / np.sqrt(.82)
    assert np.allclose(knn.similarity[0], [1, cos01], atol=1e-6)
    assert knn.neighbor.dtype == np.int64
    assert knn.similarity.dtype == np.float32


def test_torch_exact_search_by_hand():
    knn = torch_exact_search(l2_normalize(X), k=2)
    assert knn.neighbor.tolist() == [[0, 1], [1, 0], [2, 3], [3, 2], [4, 2]]
    assert np.allclose(knn.similarity[:, 0], 1, atol=1e-6)


def test_torch_exact_search_in_blocks_matches_faiss(device):
    rng = np.random.default_rng(1)
    x = l2_normalize(rng.standard_normal((300, 16)).astype(np.float32))
    expected = knn_search(x, k=10, normalize=False)
    # Blocks of 300 * 7 // 300 = 7 query rows: 43 blocks, the last of 6.
    knn = torch_exact_search(x, 10, device, max_block_elements=300 * 7)
    assert (knn.neighbor == expected.neighbor).all()
    assert np.allclose(knn.similarity, expected.similarity, atol=1e-5)
    # knn_search on a CUDA device without faiss-gpu takes the same path.
    searched = knn_search(x, k=10, device=device, normalize=False)
    assert (searched.neighbor == expected.neighbor).all()


def test_exact_search_matches_brute_force():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 16)).astype(np.float32)
    knn = knn_search(x, k=10, chunk_size=64)
    neighbor, similarity = brute_force(x, 10)
    assert (knn.neighbor[:, 0] == np.arange(300)).all()
    assert np.allclose(knn.similarity, similarity, atol=1e-5)
    assert knn_recall(knn, knn) == 1.0


def test_duplicates_keep_self_first():
    x = np.array([[1, 0], [1, 0], [1, 0], [0, 1]], np.float32)
    knn = knn_search(x, k=2)
    assert knn.neighbor[:, 0].tolist() == [0, 1, 2, 3]
    assert np.all(np.diff(knn.similarity, axis=1) <= 1e-6)


@pytest.mark.parametrize('method', ['ivf', 'hnsw'])
def test_approximate_search_has_high_recall(method):
    x = clustered()
    exact = knn_search(x, k=10)
    approx = knn_search(x, k=10, method=method, num_probes=16)
    assert (approx.neighbor[:, 0] == np.arange(2000)).all()
    assert knn_recall(approx, exact) > 0.95


def clustered(num_nodes: int = 2000) -> np.ndarray:
    rng = np.random.default_rng(1)
    centers = rng.standard_normal((20, 32))
    return (centers[rng.integers(0, 20, num_nodes)] +
            0.3 * rng.standard_normal((num_nodes, 32))).astype(np.float32)


def test_blocked_search_probing_every_list_is_exact(device):
    rng = np.random.default_rng(0)
    x = l2_normalize(rng.standard_normal((600, 16)).astype(np.float32))
    exact = knn_search(x, k=12, normalize=False)
    # 7 lists of ~86 rows (fewer than k=12 in none), scored in row chunks.
    knn = blocked_search(x, 12, num_lists=7, num_probes=7, device=device,
                         max_block_elements=1000)
    assert (knn.neighbor == exact.neighbor).all()
    assert np.allclose(knn.similarity, exact.similarity, atol=1e-5)
    assert knn.neighbor.dtype == np.int64
    assert knn.similarity.dtype == np.float32


@pytest.mark.parametrize('num_probes, bound', [(2, 0.96), (4, 0.995)])
def test_blocked_search_recall_on_clustered_set(num_probes, bound):
    x = clustered()
    exact = knn_search(x, k=10)
    # 20 identities in 44 lists (measured: 0.971 and 0.9994; IVF with as
    # many lists and probes gets 0.937 and 0.997).
    knn = knn_search(x, k=10, method='blocked', num_lists=44,
                     num_probes=num_probes)
    assert knn_recall(knn, exact) > bound
    assert (knn.neighbor[:, 0] == np.arange(2000)).all()
    assert np.all(np.diff(knn.similarity, axis=1) <= 1e-6)
    assert (knn.neighbor[:, 1:] != np.arange(2000)[:, None]).all()


def test_blocked_search_pads_rows_with_fewer_candidates():
    # 20 points on a circle, one per list, one probe: each row sees its 8
    # nearby lists only (itself and its 7 nearest), so k=10 leaves two gaps,
    # filled with the node itself.
    angle = 2 * np.pi * np.arange(20) / 20
    x = np.stack([np.cos(angle), np.sin(angle)], axis=1).astype(np.float32)
    with pytest.warns(UserWarning, match='fewer than k results'):
        knn = knn_search(x, k=10, method='blocked', num_lists=20,
                         num_probes=1)
    exact = knn_search(x, k=7)  # the 8th is a tie of two
    assert knn.neighbor[:, 0].tolist() == list(range(20))
    assert (np.sort(knn.neighbor[:, 1:7], axis=1)
            == np.sort(exact.neighbor[:, 1:7], axis=1)).all()
    assert np.allclose(knn.similarity[:, 7], np.cos(4 * 2 * np.pi / 20))
    assert (knn.neighbor[:, 8:] == np.arange(20)[:, None]).all()
    assert (knn.similarity[:, 8:] == -1).all()


def test_blocked_search_rejects_bad_sizes():
    with pytest.raises(ValueError, match="'num_probes' must be at least 1 "
                       r'\(got 0\)'):
        knn_search(X, k=2, method='blocked', num_probes=0)
    with pytest.raises(ValueError, match="'num_lists' must be at least 1"):
        knn_search(X, k=2, method='blocked', num_lists=-3)
    with pytest.raises(ValueError, match='only 5 nodes'):
        knn_search(X, k=6, method='blocked')


def test_knn_recall_by_hand():
    from ltc_pyg.data.io import KNN
    exact = KNN(np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1]]),
                np.zeros((3, 3), np.float32))
    approx = KNN(np.array([[0, 2, 1], [1, 2, 2], [2, 1, 1]]),
                 np.zeros((3, 3), np.float32))
    assert knn_recall(approx, exact) == pytest.approx(4 / 6)


def test_rejects_k_above_n_and_unknown_method():
    with pytest.raises(ValueError, match='only 5 nodes'):
        knn_search(X, k=6)
    with pytest.raises(ValueError, match="Unknown kNN method 'lsh'"):
        knn_search(X, k=2, method='lsh')

@pytest.mark.skipif(torch.cuda.is_available(), reason='tests a CPU machine')
def test_cuda_search_without_a_gpu_says_what_is_missing():
    with pytest.raises(ValueError, match='needs faiss-gpu or a CUDA build'):
        knn_search(X, k=2, device='cuda')
    with pytest.raises(ValueError, match='faiss-gpu'):
        knn_search(X, k=2, method='ivf', device='cuda')


def test_default_num_lists():
    assert default_num_lists(584_013) == 3056
    assert default_num_lists(100) == 2


def test_cache_is_reused_only_for_same_features_k_and_method(tmp_path):
    path = tmp_path / 'knns' / 'faiss_k_2.npz'
    first = cached_knn_search(X, 2, path)
    assert path.is_file()
    stamp = path.stat().st_mtime_ns
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        again = cached_knn_search(X, 2, path)
    assert path.stat().st_mtime_ns == stamp
    assert np.array_equal(first.neighbor, again.neighbor)
    with pytest.warns(UserWarning, match='built for other features'):
        cached_knn_search(X[::-1].copy(), 2, path)
    with pytest.warns(UserWarning, match='built for other method'):
        cached_knn_search(X[::-1].copy(), 2, path, method='hnsw')
    with pytest.warns(UserWarning, match='built for other k'):
        rebuilt = cached_knn_search(X[::-1].copy(), 3, path, method='hnsw')
    assert rebuilt.neighbor.shape == (5, 3)


def test_auto_is_exact_up_to_200k_nodes_and_blocked_above():
    assert resolve_knn_method('auto', 200_000) == 'flat'
    assert resolve_knn_method('auto', 200_001) == 'blocked'
    assert resolve_knn_method('ivf', 10**7) == 'ivf'
    assert resolve_knn_method('auto', 10**7, num_processes=2) == 'flat'
    x = clustered(500)
    exact = knn_search(x, k=8)
    auto = knn_search(x, k=8, method='auto')
    assert (auto.neighbor == exact.neighbor).all()


def test_auto_cache_records_the_search_it_ran(tmp_path):
    from ltc_pyg.data.io import read_knn_metadata

    path = tmp_path / 'faiss_k_2.npz'
    cached_knn_search(X, 2, path, method='auto')
    assert read_knn_metadata(path)['method'] == 'flat'
    stamp = path.stat().st_mtime_ns
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        cached_knn_search(X, 2, path, method='flat')
    assert path.stat().st_mtime_ns == stamp


def test_blocked_probes_128_lists_by_default():
    x = np.random.default_rng(0).standard_normal((2000, 16)).astype(
        np.float32)
    exact = knn_search(x, k=10)
    found = {probes: knn_search(x, k=10, method='blocked', num_lists=300,
                                num_probes=probes)
             for probes in (None, 128, 64)}
    assert (found[None].neighbor == found[128].neighbor).all()
    # Measured: 1.0 at 128 probes of 300 lists, 0.99956 at 64.
    assert knn_recall(found[None], exact) == 1.0
    assert knn_recall(found[64], exact) < 1.0


def test_fingerprint_sees_every_value():
    y = X.copy()
    y[4, 1] = 1e-7
    assert fingerprint(X) != fingerprint(y)
    assert fingerprint(X) == fingerprint(X.copy())


@pytest.mark.parametrize('scale', [1e-30, 1e-21, 1.0, 1e19, 1e30])
def test_l2_normalize_extreme_norms(scale):
    x = np.array([[3, 4], [-4, 3]], dtype=np.float32) * np.float32(scale)
    np.testing.assert_allclose(l2_normalize(x), [[.6, .8], [-.8, .6]],
                               rtol=1e-6)


def test_l2_normalize_normal_rows_stay_float32_exact():
    x = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32)
    expected = x / np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_array_equal(l2_normalize(x), expected)
