r"""Readers and writers for the learn-to-cluster data layout.

The layout of the original project reads and writes unchanged::

    features/<name>.bin            raw float32, row-major, N x D, no header
                                   (``.npy`` is accepted too)
    labels/<name>.meta             one integer identity per line, -1 = unknown
    knns/<name>/faiss_k_<k>.npz    key ``data``: [N, 2, k] = (neighbour ids,
                                   cosine distance 1 - similarity)

Readers memory-map where they can and validate what they read; every error
names the file and the numbers. Writers are atomic: they write a temporary
file in the destination folder and rename it, so a failure never leaves a
half-written file behind.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, NamedTuple

import numpy as np

from ltc_pyg.data.validation import (
    check_features,
    check_knn,
    check_knn_distances,
    check_labels,
)

PathLike = str | os.PathLike


class KNN(NamedTuple):
    r"""Dense top-k neighbour lists, sorted by decreasing similarity.

    Row ``i`` holds the node itself first (as faiss returns it), then its
    ``k - 1`` nearest neighbours.

    Attributes:
        neighbor (np.ndarray): Neighbour ids, int64 ``[num_nodes, k]``.
        similarity (np.ndarray): Cosine similarities, float32
            ``[num_nodes, k]``.
    """
    neighbor: np.ndarray
    similarity: np.ndarray


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = 'wb') -> Iterator[IO]:
    r"""Opens a temporary file beside ``path`` and renames it onto ``path``
    when the block succeeds; on any error (``KeyboardInterrupt`` and the
    CLI's SIGTERM exit included) the temporary file is removed and ``path``
    is left as it was.

    An :class:`OSError` of the write itself (disk full, file too large) is
    re-raised naming ``path``. The file gets the mode of :func:`file_mode`
    (an existing 0600 file stays 0600). A symlink is written *through*: its
    target is replaced and the link itself stays, so a
    ``latest.pth -> run3.pth`` link keeps pointing where it pointed.
    """
    target = Path(os.path.realpath(path))
    if target.exists() and not target.is_file():
        # A rename would replace a directory entry such as /dev/null.
        raise ValueError(f'Cannot write {path}: it exists and is not a '
                         f'regular file')
    target.parent.mkdir(parents=True, exist_ok=True)
    permissions = file_mode(target)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent,
                                   prefix=f'.{target.name}.', suffix='.tmp')
        os.chmod(tmp, permissions)  # mkstemp creates 0600
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as error:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if isinstance(error, OSError) and error.errno:
            # Disk full, file too large, ...: name the file, not the temp
            # file (OSError(errno, ...) is still e.g. a PermissionError).
            raise OSError(error.errno, f'cannot write {path}: '
                          f'{os.strerror(error.errno)}') from None
        raise


def file_mode(path: PathLike) -> int:
    r"""The permission bits a new version of ``path`` gets: those of the
    existing file, else ``0666`` minus the umask (as :func:`open` would)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _existing_file(path: PathLike, what: str) -> Path:
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f'{what} path {path} is a directory, not a '
                                f'file')
    if not path.is_file():
        raise FileNotFoundError(f'{what} file not found: {path}')
    if path.stat().st_size == 0:
        raise ValueError(f'{what} file is empty: {path}')
    return path


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    r"""Shape, dtype and data offset of a ``.npy`` file, read from its
    header only, so that object arrays and truncated files are reported
    before numpy touches the data."""
    with open(path, 'rb') as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0
                           if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(f)
        except (ValueError, EOFError, SyntaxError) as error:
            raise ValueError(f'{path} is not a readable .npy file '
                             f'({str(error).splitlines()[0]})') from None
        return shape, dtype, f.tell()


def _read_npy_features(path: Path) -> np.ndarray:
    shape, dtype, offset = _npy_header(path)
    if dtype.hasobject:
        raise ValueError(f'{path} holds Python objects (dtype {dtype}), not '
                         f'numbers; save the features as a float32 array')
    if dtype.kind not in 'fiu':
        raise ValueError(f'{path} has dtype {dtype}; features must be '
                         f'numbers (float32)')
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    size = path.stat().st_size
    if size < expected:
        raise ValueError(f'{path} is truncated: its header says {shape} '
                         f'{dtype} ({expected} bytes) but the file has {size} '
                         f'bytes')
    x = np.load(path, mmap_mode='r')
    return x if x.dtype == np.float32 else x.astype(np.float32)


def _float64_rows(path: Path, dim: int) -> int | None:
    r"""If the start of a raw ``.bin`` file reads as plausible float64 but
    implausible float32 (exponent bits split across two float32 words),
    returns the row count it would have as float64 ``[N, dim]``."""
    size = path.stat().st_size
    if size % (8 * dim):
        return None
    with open(path, 'rb') as f:
        head = f.read(min(size, 8 * dim * 64))
    as64 = np.frombuffer(head, dtype=np.float64)
    as32 = np.frombuffer(head, dtype=np.float32)
    nonzero64 = np.abs(as64[as64 != 0])
    plausible64 = (np.isfinite(as64).all() and nonzero64.size > 0
                   and nonzero64.min() > 1e-30 and nonzero64.max() < 1e6)
    finite32 = np.isfinite(as32)
    magnitude = np.abs(as32[finite32 & (as32 != 0)])
    # float64 words split in two: the low halves of round numbers are 0, of
    # others random bits (float32 values of absurd magnitude).
    implausible32 = (not finite32.all()
                     or ((as32[0::2] == 0).all() and (as32[1::2] != 0).all())
                     or magnitude.max(initial=0) > 1e6
                     or (magnitude < 1e-30).mean() > 0.25)
    return size // (8 * dim) if plausible64 and implausible32 else None


def read_features(path: PathLike, dim: int | None = None,
                  check: bool = True) -> np.ndarray:
    r"""Reads features as a read-only memory-mapped float32 array.

    Args:
        path (str): A ``.bin`` file (raw float32, needs ``dim``) or ``.npy``.
        dim (int, optional): Feature dimension ``D`` of a ``.bin`` file.
        check (bool, optional): Validate shape and values (NaN/Inf and
            zero-norm rows). (default: :obj:`True`)

    Returns:
        np.ndarray: ``[N, D]`` float32 (a memmap for ``.bin`` and float32
        ``.npy`` files).
    """
    path = _existing_file(path, 'Features')
    if path.suffix == '.npy':
        x = _read_npy_features(path)
        if dim is not None and x.ndim == 2 and x.shape[1] != dim:
            raise ValueError(f'{path} has {x.shape[1]} features per row but '
                             f'--dim {dim} was given')
    else:
        if dim is None or dim < 1:
            raise ValueError(f'Reading raw features from {path} needs the '
                             f'feature dimension, --dim (got {dim})')
        size = path.stat().st_size
        if size % (4 * dim) != 0:
            raise ValueError(
                f'{path} has {size} bytes, not a multiple of 4 * dim = '
                f'{4 * dim} (float32 x {dim}); is the dimension right? '
                f'{size / 4 / dim:.2f} rows would follow')
        rows = _float64_rows(path, dim)
        if rows is not None:
            raise ValueError(
                f'{path} looks like float64, not the raw float32 of a .bin '
                f'file ({size} bytes = {rows} float64 rows of {dim}); convert '
                f'it, e.g. np.fromfile(path).astype(np.float32).tofile(path)')
        x = np.memmap(path, dtype=np.float32, mode='r',
                      shape=(size // (4 * dim), dim))
    if check:
        check_features(x, dim, source=str(path))
    return x


def write_features(path: PathLike, x: np.ndarray) -> None:
    r"""Writes ``[N, D]`` features as raw float32 (``.bin``) or ``.npy``,
    atomically."""
    check_features(x, allow_zero_rows=True)
    x = np.ascontiguousarray(x, dtype=np.float32)
    with atomic_write(path) as f:
        if Path(path).suffix == '.npy':
            np.save(f, x)
        else:
            x.tofile(f)


def read_labels(path: PathLike, num_nodes: int | None = None) -> np.ndarray:
    r"""Reads a ``.meta`` file: one integer label per line, ``-1`` = unknown.

    Args:
        path (str): The file.
        num_nodes (int, optional): Expected number of labels (the number of
            feature rows); a different count is an error.

    Returns:
        np.ndarray: int64 ``[N]``.
    """
    path = _existing_file(path, 'Labels')
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError as error:
        raise ValueError(f'{path} is not a text file of labels (byte '
                         f'{error.start} is not UTF-8)') from None
    # Trailing blank lines are tolerated, blank lines inside are not.
    while lines and not lines[-1].strip():
        lines.pop()
    try:
        labels = np.array(lines, dtype=np.int64)
    except (ValueError, OverflowError):
        for number, line in enumerate(lines, start=1):
            try:
                value = int(line)
            except ValueError:
                raise ValueError(f'{path}:{number}: expected one integer '
                                 f'label per line (got {line!r})') from None
            if not -2**63 <= value < 2**63:
                raise ValueError(f'{path}:{number}: label {value} does not '
                                 f'fit in int64 (|label| < 2^63)') from None
        raise
    check_labels(labels, num_nodes, source=str(path))
    return labels


def write_labels(path: PathLike, labels: np.ndarray) -> None:
    r"""Writes one integer label per line (``.meta``), atomically."""
    labels = np.asarray(labels)
    check_labels(labels)
    text = '\n'.join(map(str, labels.tolist()))
    with atomic_write(path, 'w') as f:
        f.write(text + '\n')


def read_knn(path: PathLike, num_nodes: int | None = None,
             k: int | None = None) -> KNN:
    r"""Reads a kNN file of the original layout (``.npz``, key ``data``,
    ``[N, 2, k]`` = neighbour ids, cosine distance).

    Besides shape and ids, the content is checked: float dtype, finite
    distances in :math:`[0, 2]`, each row starting with the node itself
    (:func:`~ltc_pyg.data.validation.check_knn_distances`, which also spots
    similarities stored as distances). Rows are re-sorted by decreasing
    similarity with a stable sort, so an already sorted file keeps its order
    (ties included).

    Args:
        path (str): The ``.npz`` file.
        num_nodes (int, optional): Expected ``N``.
        k (int, optional): Expected ``k``.
    """
    path = _existing_file(path, 'kNN')
    with _npz_member(path, 'data') as (shape, dtype, blocks):
        if dtype.kind != 'f':
            raise ValueError(f'{path}: kNN data has dtype {dtype}; the '
                             f'original layout stores float ids and cosine '
                             f'distances (float64)')
        if len(shape) != 3 or shape[1] != 2 or shape[2] == 0:
            raise ValueError(f'{path}: expected data of shape [N, 2, k] '
                             f'with k >= 1 (got {shape})')
        neighbor = np.empty((shape[0], shape[2]), dtype=np.int64)
        similarity = np.empty((shape[0], shape[2]), dtype=np.float32)
        # Read and converted in blocks of rows: the file's float64 array
        # (1,280 B per node at k=80) is never whole in memory.
        for start, data in blocks(_KNN_BLOCK_ROWS):
            block = slice(start, start + data.shape[0])
            ids = data[:, 0, :]
            if (not np.isfinite(ids).all()
                    or not np.array_equal(ids, np.round(ids))):
                raise ValueError(f'{path}: neighbour ids must be whole '
                                 f'numbers')
            neighbor[block] = ids
            similarity[block] = 1.0 - data[:, 1, :]
    check_knn(neighbor, similarity, num_nodes, k, source=str(path))
    # float32 distances: within the check's 1e-3 tolerance of the file's.
    check_knn_distances(neighbor, 1.0 - similarity, source=str(path))
    for start in range(0, neighbor.shape[0], _KNN_BLOCK_ROWS):
        block = slice(start, start + _KNN_BLOCK_ROWS)
        order = np.argsort(-similarity[block], axis=1, kind='stable')
        neighbor[block] = np.take_along_axis(neighbor[block], order, axis=1)
        similarity[block] = np.take_along_axis(similarity[block], order,
                                               axis=1)
    return KNN(neighbor, similarity)


#: Rows of a kNN file converted at a time by :func:`read_knn`.
_KNN_BLOCK_ROWS = 65536


# What numpy, zipfile and zlib raise for truncated or corrupt archives.
_NPZ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error)


def _npz_error(where: str, error: Exception) -> ValueError:
    if 'pickle' in str(error):  # numpy's advice to allow pickles is not ours
        return ValueError(f'{where} holds Python objects, not numbers')
    return ValueError(f'{where} is unreadable (truncated or corrupt? '
                      f'{str(error).splitlines()[0]})')


@contextlib.contextmanager
def _open_npz(path: Path) -> Iterator[np.lib.npyio.NpzFile]:
    r"""``np.load`` of an ``.npz`` file, with truncated or corrupt archives
    reported as :class:`ValueError` naming the file."""
    try:
        npz = np.load(path)
    except _NPZ_ERRORS as error:
        raise _npz_error(str(path), error) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f'{path} is a .npy array, not a .npz archive')
    with npz:
        yield npz


#: Readers of the ``.npy`` header versions, by version.
_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0}

#: A reader of an array's rows: ``blocks(rows)`` yields ``(start, array)``
#: for consecutive blocks of at most ``rows`` rows.
RowBlocks = Callable[[int], Iterator[tuple[int, np.ndarray]]]


@contextlib.contextmanager
def _npz_member(path: Path, key: str
                ) -> Iterator[tuple[tuple[int, ...], np.dtype, RowBlocks]]:
    r"""The array ``key`` of an ``.npz`` archive as ``(shape, dtype,
    blocks)``, read from the archive as a stream (stored or deflated) so
    that only one block of rows is in memory at a time. Truncated or
    corrupt archives and missing keys raise :class:`ValueError` naming the
    file."""
    with open(path, 'rb') as f:
        if f.read(6) == b'\x93NUMPY':
            raise ValueError(f'{path} is a .npy array, not a .npz archive')
    with contextlib.ExitStack() as stack:
        try:
            archive = stack.enter_context(zipfile.ZipFile(path))
        except _NPZ_ERRORS as error:
            raise _npz_error(str(path), error) from None
        name = _npz_entry(archive, key, path)
        try:
            stream = stack.enter_context(archive.open(name))
            version = np.lib.format.read_magic(stream)
            header = _NPY_HEADERS.get(version)
            if header is not None:
                shape, fortran, dtype = header(stream)
        except _NPZ_ERRORS as error:
            raise _npz_error(f"{path}: '{key}'", error) from None
        if header is None:
            raise ValueError(f"{path}: '{key}' is a .npy of version "
                             f'{version}, which this reader does not know; '
                             f'rewrite it with np.savez')
        if dtype.hasobject:
            raise ValueError(f"{path}: '{key}' holds Python objects, not "
                             f'numbers')
        row_shape = shape[1:]
        row_bytes = dtype.itemsize * int(np.prod(row_shape))

        def read(size: int) -> np.ndarray:
            try:
                data = stream.read(size)
            except _NPZ_ERRORS as error:
                raise _npz_error(f"{path}: '{key}'", error) from None
            if len(data) != size:
                raise ValueError(f"{path}: '{key}' is unreadable (truncated "
                                 f'or corrupt? it ends {size - len(data)} '
                                 f'bytes early)')
            return np.frombuffer(data, dtype)

        def blocks(rows: int) -> Iterator[tuple[int, np.ndarray]]:
            if fortran:  # column-major: only whole
                whole = read(row_bytes * shape[0]).reshape(shape, order='F')
                for start in range(0, shape[0], rows):
                    yield start, whole[start:start + rows]
                return
            for start in range(0, shape[0], rows):
                count = min(rows, shape[0] - start)
                yield start, read(row_bytes * count).reshape(
                    (count, *row_shape))

        yield shape, dtype, blocks


def _npz_entry(archive: zipfile.ZipFile, key: str, path: Path) -> str:
    names = archive.namelist()
    if f'{key}.npy' not in names:
        keys = [name.removesuffix('.npy') for name in names]
        raise ValueError(f"{path} has no key '{key}' (keys: {keys}); not a "
                         f'kNN file of the original layout')
    return f'{key}.npy'


def _npz_array(npz: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
    try:
        return npz[key]
    except _NPZ_ERRORS as error:
        raise _npz_error(f"{path}: '{key}'", error) from None


def write_knn(path: PathLike, knn: KNN, **metadata: str) -> None:
    r"""Writes kNN arrays in the original layout (``data`` = ``[N, 2, k]``
    float64 of ids and cosine distances), atomically.

    Extra string ``metadata`` (e.g. a fingerprint of the features and the
    search method) is stored under its own keys; the original code reads
    only ``data`` and ignores them.
    """
    check_knn(knn.neighbor, knn.similarity)
    data = np.stack([knn.neighbor.astype(np.float64),
                     1.0 - knn.similarity.astype(np.float64)], axis=1)
    extra = {key: np.array(value) for key, value in metadata.items()}
    with atomic_write(path) as f:
        np.savez_compressed(f, data=data, **extra)


def read_knn_metadata(path: PathLike) -> dict[str, str]:
    r"""Returns the string metadata stored beside ``data`` in a kNN file
    (empty for files written by the original code)."""
    path = _existing_file(path, 'kNN')
    with _open_npz(path) as npz:
        return {key: str(_npz_array(npz, key, path)) for key in npz.files
                if key != 'data'}
