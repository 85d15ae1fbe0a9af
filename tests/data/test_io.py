import io
import os
import zipfile

import numpy as np
import pytest

from ltc_pyg.data import io as io_module
from ltc_pyg.data.io import (
    KNN,
    atomic_write,
    read_features,
    read_knn,
    read_knn_metadata,
    read_labels,
    write_features,
    write_knn,
    write_labels,
)

X = np.array([[1, 0, 0], [0, 2, 0], [0, 0, 3], [1, 1, 0]], dtype=np.float32)


@pytest.mark.parametrize('suffix', ['.bin', '.npy'])
def test_features_round_trip(tmp_path, suffix):
    path = tmp_path / f'features{suffix}'
    write_features(path, X)
    x = read_features(path, dim=3)
    assert x.dtype == np.float32 and x.shape == (4, 3)
    assert np.array_equal(x, X)
    if suffix == '.bin':
        assert path.stat().st_size == 4 * 4 * 3
        assert isinstance(x, np.memmap)


def test_features_bin_needs_a_matching_dim(tmp_path):
    path = tmp_path / 'f.bin'
    X.tofile(path)  # 48 bytes
    with pytest.raises(ValueError, match=r'48 bytes, not a multiple of 4 '
                       r'\* dim = 20 \(float32 x 5\)'):
        read_features(path, dim=5)
    with pytest.raises(ValueError, match='needs the feature dimension'):
        read_features(path)


def test_features_rejects_nan_and_zero_rows(tmp_path):
    bad = X.copy()
    bad[2, 1] = np.nan
    bad.tofile(tmp_path / 'nan.bin')
    with pytest.raises(ValueError, match=r'nan.bin have NaN/Inf in 1 of 4 '
                       r'rows \(first: \[2\]\)'):
        read_features(tmp_path / 'nan.bin', dim=3)
    zero = X.copy()
    zero[1] = 0
    zero.tofile(tmp_path / 'zero.bin')
    with pytest.raises(ValueError, match=r'1 zero-norm rows of 4 \(first: '
                       r'\[1\]\)'):
        read_features(tmp_path / 'zero.bin', dim=3)


def test_features_missing_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.bin'):
        read_features(tmp_path / 'missing.bin', dim=3)
    (tmp_path / 'empty.bin').write_bytes(b'')
    with pytest.raises(ValueError, match='empty.bin'):
        read_features(tmp_path / 'empty.bin', dim=3)


def test_npy_with_other_dim_is_rejected(tmp_path):
    np.save(tmp_path / 'f.npy', X)
    with pytest.raises(ValueError, match='3 features per row but --dim 4'):
        read_features(tmp_path / 'f.npy', dim=4)


def test_labels_round_trip_with_unknown(tmp_path):
    path = tmp_path / 'labels.meta'
    write_labels(path, np.array([3, -1, 0, 3]))
    assert path.read_text() == '3\n-1\n0\n3\n'
    assert read_labels(path, num_nodes=4).tolist() == [3, -1, 0, 3]


def test_labels_errors_name_file_and_numbers(tmp_path):
    path = tmp_path / 'labels.meta'
    path.write_text('1\n2\n2.5\n')
    with pytest.raises(ValueError, match=r"labels.meta:3: expected one "
                       r"integer label per line \(got '2.5'\)"):
        read_labels(path)
    path.write_text('1\n2\n3\n')
    with pytest.raises(ValueError, match=r'Got 3 labels in .*labels.meta '
                       r'for 4 nodes'):
        read_labels(path, num_nodes=4)


def test_knn_round_trip_in_original_layout(tmp_path):
    knn = KNN(np.array([[0, 1], [1, 0], [2, 1]]),
              np.array([[1.0, 0.5], [1.0, 0.5], [1.0, 0.25]], np.float32))
    path = tmp_path / 'faiss_k_2.npz'
    write_knn(path, knn, method='flat')
    data = np.load(path)['data']
    assert data.shape == (3, 2, 2) and data.dtype == np.float64
    assert data[2, 0].tolist() == [2.0, 1.0]
    assert data[2, 1].tolist() == [0.0, 0.75]  # cosine distance 1 - sim
    back = read_knn(path, num_nodes=3, k=2)
    assert np.array_equal(back.neighbor, knn.neighbor)
    assert np.allclose(back.similarity, knn.similarity)
    assert read_knn_metadata(path) == {'method': 'flat'}


def test_knn_for_other_features_is_rejected(tmp_path):
    knn = KNN(np.array([[0, 1], [1, 0]]), np.ones((2, 2), np.float32))
    write_knn(tmp_path / 'k.npz', knn)
    with pytest.raises(ValueError, match=r'k.npz has 2 rows but the '
                       r'features have 5 nodes'):
        read_knn(tmp_path / 'k.npz', num_nodes=5)
    with pytest.raises(ValueError, match='has k=2 but k=3 was asked for'):
        read_knn(tmp_path / 'k.npz', k=3)
    np.savez(tmp_path / 'other.npz', x=np.zeros(3))
    with pytest.raises(ValueError, match="has no key 'data'"):
        read_knn(tmp_path / 'other.npz')


def test_read_knn_sorts_rows_stably(tmp_path):
    data = np.array([[[0, 2, 1], [0.0, 0.5, 0.1]],
                     [[1, 0, 2], [0.0, 0.3, 0.3]],
                     [[2, 1, 0], [0.0, 0.2, 0.4]]])
    np.savez(tmp_path / 'k.npz', data=data)
    knn = read_knn(tmp_path / 'k.npz')
    assert knn.neighbor.tolist() == [[0, 1, 2], [1, 0, 2], [2, 1, 0]]


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    path = tmp_path / 'out.meta'
    path.write_text('old\n')
    with pytest.raises(RuntimeError):
        with atomic_write(path, 'w') as f:
            f.write('partial')
            raise RuntimeError('boom')
    assert path.read_text() == 'old\n'
    assert os.listdir(tmp_path) == ['out.meta']


def test_atomic_write_respects_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_labels(tmp_path / 'l.meta', np.array([1]))
    finally:
        os.umask(old)
    assert (tmp_path / 'l.meta').stat().st_mode & 0o777 == 0o644


def test_atomic_write_keeps_the_mode_and_writes_through_symlinks(tmp_path):
    target = tmp_path / 'labels.meta'
    write_labels(target, np.array([0, 1]))
    target.chmod(0o600)
    link = tmp_path / 'latest.meta'
    link.symlink_to(target)
    write_labels(link, np.array([2, 3, 4]))
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == '2\n3\n4\n'
    assert target.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'labels.meta', 'latest.meta']


def test_atomic_write_removes_its_temp_file_on_interrupt(tmp_path):
    path = tmp_path / 'x.bin'
    path.write_bytes(b'old')
    with pytest.raises(KeyboardInterrupt), atomic_write(path) as f:
        f.write(b'new')
        raise KeyboardInterrupt
    assert path.read_bytes() == b'old'
    assert [p.name for p in tmp_path.iterdir()] == ['x.bin']


def test_float_sized_bin_of_float32_is_not_taken_for_float64(tmp_path):
    # Sparse float32 rows split into float64 words look like denormals.
    path = tmp_path / 'eye.bin'
    np.eye(4, dtype=np.float32).tofile(path)
    np.testing.assert_array_equal(read_features(path, dim=4), np.eye(4))


def test_float64_bin_says_so(tmp_path):
    path = tmp_path / 'x.bin'
    np.random.default_rng(0).standard_normal((6, 4)).tofile(path)
    with pytest.raises(ValueError, match=r'looks like float64.*192 bytes = '
                       r'6 float64 rows of 4'):
        read_features(path, dim=4)


@pytest.mark.parametrize('distance, message', [
    ([[0.0, 0.2], [0.0, 5.0]], r'distances in \[0, 5\], outside \[0, 2\] of '
     r'cosine distances$'),
    ([[1.0, 0.8], [1.0, -0.4]], r'outside \[0, 2\].*median distance 1.000'
     r'.*written as similarities'),
    ([[1.0, 0.8], [1.0, 0.4]], r'2 of 2 rows do not start with the node '
     r'itself.*written as similarities'),
    ([[0.0, np.nan], [0.0, 0.1]], r'NaN/Inf distances in 1 of 2 rows'),
])
def test_knn_distances_are_checked_by_content(tmp_path, distance, message):
    path = tmp_path / 'k.npz'
    ids = np.array([[0, 1], [1, 0]], dtype=np.float64)
    np.savez(path, data=np.stack([ids, np.array(distance)], axis=1))
    with pytest.raises(ValueError, match=message):
        read_knn(path)


def test_knn_duplicates_may_precede_or_crowd_out_the_node(tmp_path):
    # Nodes 0-2 are one point; node 0's row lacks itself. 1 row of 101 is
    # tolerated, 2 are not.
    ids = np.stack([np.arange(101), (np.arange(101) + 1) % 101], 1)
    ids[0] = [1, 2]
    ids[1] = [0, 1]
    distance = np.zeros((101, 2))
    distance[3:, 1] = 0.5
    path = tmp_path / 'k.npz'
    np.savez(path, data=np.stack([ids.astype(float), distance], axis=1))
    assert read_knn(path).neighbor[:2].tolist() == [[1, 2], [0, 1]]
    ids[2] = [0, 1]
    np.savez(path, data=np.stack([ids.astype(float), distance], axis=1))
    with pytest.raises(ValueError, match=r'2 of 101 rows do not contain the '
                       r'node itself \(row 0 starts with node 1\)'):
        read_knn(path)


def test_atomic_write_names_the_file_when_the_disk_is_full(tmp_path):
    path = tmp_path / 'x.bin'
    with pytest.raises(OSError, match=f'cannot write {path}: No space left'):
        with atomic_write(path) as f:
            f.write(b'partial')
            raise OSError(28, 'No space left on device')
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_never_replaces_a_device_or_fifo(tmp_path):
    fifo = tmp_path / 'fifo'
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match='not a regular file'):
        write_labels(fifo, np.array([0]))
    assert fifo.is_fifo() and [p.name for p in tmp_path.iterdir()] == ['fifo']


@pytest.mark.parametrize('save', [np.savez, np.savez_compressed])
def test_read_knn_streams_the_archive_in_blocks(tmp_path, monkeypatch, save):
    # The file's float64 [N, 2, k] is read a block of rows at a time (here
    # 3 rows); stored and deflated archives, C and Fortran order.
    rng = np.random.default_rng(0)
    neighbor = np.stack([np.roll(np.arange(8), -i)[:4] for i in range(8)])
    distance = np.sort(rng.uniform(0.1, 0.9, (8, 4)), axis=1)
    distance[:, 0] = 0.0
    data = np.stack([neighbor.astype(np.float64), distance], axis=1)
    monkeypatch.setattr(io_module, '_KNN_BLOCK_ROWS', 3)
    for order in 'CF':
        save(tmp_path / 'k.npz', data=np.asarray(data, order=order))
        knn = read_knn(tmp_path / 'k.npz', num_nodes=8, k=4)
        assert knn.neighbor.tolist() == neighbor.tolist()
        np.testing.assert_allclose(knn.similarity, 1.0 - distance, atol=1e-7)


def test_read_knn_names_a_corrupt_member(tmp_path):
    data = np.zeros((50, 2, 4))
    data[:, 0] = np.arange(50)[:, None]
    np.savez_compressed(tmp_path / 'k.npz', data=data)
    raw = bytearray((tmp_path / 'k.npz').read_bytes())
    raw[120:140] = b'\xff' * 20  # inside the deflated member
    (tmp_path / 'k.npz').write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"k.npz: 'data' is unreadable"):
        read_knn(tmp_path / 'k.npz')


def test_read_knn_names_an_unknown_npy_version(tmp_path):
    member = io.BytesIO()
    np.lib.format.write_array(member, np.zeros((4, 2, 2)), version=(3, 0))
    with zipfile.ZipFile(tmp_path / 'k.npz', 'w') as archive:
        archive.writestr('data.npy', member.getvalue())
    with pytest.raises(ValueError, match=r"k.npz: 'data' is a .npy of "
                       r'version \(3, 0\)'):
        read_knn(tmp_path / 'k.npz')
