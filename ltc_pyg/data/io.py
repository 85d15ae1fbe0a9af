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
from collections.abc import Iterator
from pathlib import Path
from typing import IO, NamedTuple

import numpy as np

from ltc_pyg.data.validation import check_features, check_knn, check_labels

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
    when the block succeeds; on any error the temporary file is removed and
    ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.',
                               suffix='.tmp')
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; use the umask
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _existing_file(path: PathLike, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{what} file not found: {path}')
    if path.stat().st_size == 0:
        raise ValueError(f'{what} file is empty: {path}')
    return path


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
        x = np.load(path, mmap_mode='r')
        if x.dtype != np.float32:
            x = x.astype(np.float32)
        if dim is not None and x.ndim == 2 and x.shape[1] != dim:
            raise ValueError(f'{path} has {x.shape[1]} features per row but '
                             f'--dim {dim} was given')
    else:
        if dim is None or dim < 1:
            raise ValueError(f'Reading raw features from {path} needs the '
                             f'feature dimension (got dim={dim})')
        size = path.stat().st_size
        if size % (4 * dim) != 0:
            raise ValueError(
                f'{path} has {size} bytes, not a multiple of 4 * dim = '
                f'{4 * dim} (float32 x {dim}); is the dimension right? '
                f'{size / 4 / dim:.2f} rows would follow')
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
    lines = path.read_text().splitlines()
    # Trailing blank lines are tolerated, blank lines inside are not.
    while lines and not lines[-1].strip():
        lines.pop()
    try:
        labels = np.array(lines, dtype=np.int64)
    except ValueError:
        for number, line in enumerate(lines, start=1):
            try:
                int(line)
            except ValueError:
                raise ValueError(f'{path}:{number}: expected one integer '
                                 f'label per line (got {line!r})') from None
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

    Rows are re-sorted by decreasing similarity with a stable sort, so an
    already sorted file keeps its order (ties included).

    Args:
        path (str): The ``.npz`` file.
        num_nodes (int, optional): Expected ``N``.
        k (int, optional): Expected ``k``.
    """
    path = _existing_file(path, 'kNN')
    try:
        with np.load(path) as npz:
            if 'data' not in npz.files:
                raise ValueError(f"{path} has no key 'data' (keys: "
                                 f'{npz.files}); not a kNN file of the '
                                 f'original layout')
            data = npz['data']
    except (OSError, EOFError) as error:
        raise ValueError(f'{path} is not a readable .npz file: '
                         f'{error}') from None
    if data.ndim != 3 or data.shape[1] != 2:
        raise ValueError(f'{path}: expected data of shape [N, 2, k] '
                         f'(got {data.shape})')
    ids, distance = data[:, 0, :], data[:, 1, :]
    if not np.isfinite(ids).all() or not np.array_equal(ids, np.round(ids)):
        raise ValueError(f'{path}: neighbour ids must be whole numbers')
    neighbor = ids.astype(np.int64)
    similarity = (1.0 - distance).astype(np.float32)
    check_knn(neighbor, similarity, num_nodes, k, source=str(path))
    order = np.argsort(-similarity, axis=1, kind='stable')
    return KNN(np.take_along_axis(neighbor, order, axis=1),
               np.take_along_axis(similarity, order, axis=1))


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
    with np.load(_existing_file(path, 'kNN')) as npz:
        return {key: str(npz[key]) for key in npz.files if key != 'data'}
