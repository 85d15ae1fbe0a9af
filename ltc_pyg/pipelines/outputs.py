r"""The output files of one command: checked before the work starts, written
to hidden temporary files beside their destinations, and moved into place
together only when the whole command has succeeded.

* An output never aliases an input or another output: paths are compared
  resolved (:func:`os.path.realpath`) and by device and inode
  (:func:`os.stat`), so symlinks, ``..`` and hard links to an input are
  caught, not only equal strings.
* Each destination is checked up front: not a directory (or, for a report
  directory, not a file), its nearest existing ancestor a writable
  directory.
* :meth:`Outputs.stage` yields a temporary path; :meth:`Outputs.commit`
  renames every staged file onto its destination; leaving the ``with``
  block without a commit (an error, Ctrl-C, SIGTERM turned into an
  exception) removes the staged files and the folders made for them.

Errors name the flag and the user's path, never a temporary name.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from ltc_pyg.data.io import file_mode


def same_file(a: Path, b: Path) -> bool:
    r"""Whether ``a`` and ``b`` name the same file: the same resolved path
    (symlinks followed, ``..`` folded, also through folders that do not
    exist yet) or the same device and inode (hard links)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        first, second = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.realpath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output(path: Path, flag: str, directory: bool = False) -> None:
    r"""Raises a one-line error naming ``flag`` and ``path`` when ``path``
    cannot be written: it is a directory (a file when ``directory``), a
    device, FIFO or socket, read-only, or its nearest existing ancestor is
    not a writable directory."""
    if path.is_dir() and not directory:
        raise IsADirectoryError(f'{flag} {path} is a directory; give a file '
                                f'path')
    if path.exists() and not path.is_dir() and directory:
        raise NotADirectoryError(f'{flag} {path} is a file; give a directory '
                                 f'(or a path ending in .json)')
    if path.exists() and not path.is_dir() and not path.is_file():
        # Renaming a file onto /dev/null or a FIFO would replace it.
        raise ValueError(f'{flag} {path} is not a regular file (a device, '
                         f'FIFO or socket); give a file path')
    if path.exists() and not os.access(path, os.W_OK):
        raise PermissionError(f'{flag} {path} is not writable')
    ancestor = _nearest_existing(path.parent)
    if not ancestor.is_dir():
        raise NotADirectoryError(f'{flag} {path}: {ancestor} is not a '
                                 f'directory')
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise PermissionError(f'{flag} {path}: cannot create files in '
                              f'{ancestor} (permission denied)')


def check_outputs(inputs: dict[str, Path | None],
                  outputs: dict[str, Path | None],
                  directories: set[str] | None = None,
                  allowed: set[tuple[str, str]] | None = None) -> None:
    r"""Checks a command's outputs before it starts.

    Args:
        inputs (dict): Flag -> input path (``None`` for flags not given).
        outputs (dict): Flag -> output path (``None`` for flags not given).
        directories (set of str, optional): Output flags that name a
            directory rather than a file.
        allowed (set of tuple, optional): ``(output flag, input flag)`` pairs
            that may name the same file (e.g. ``--resume`` and ``--out`` of a
            training run continued in place).

    Raises:
        ValueError: An output names the same file as an input or another
            output.
        OSError: An output cannot be written (see :func:`check_output`).
    """
    directories, allowed = directories or set(), allowed or set()
    given = {flag: Path(path) for flag, path in inputs.items()
             if path is not None}
    paths = {flag: Path(path) for flag, path in outputs.items()
             if path is not None}
    flags = list(paths)
    for i, (flag, path) in enumerate(paths.items()):
        for other, source in given.items():
            if (flag, other) not in allowed and same_file(path, source):
                raise ValueError(f'{flag} {path} is the input {other} '
                                 f'{source}; writing it would destroy the '
                                 f'input. Choose another output path')
        for other in flags[i + 1:]:
            if same_file(path, paths[other]):
                raise ValueError(f'{flag} and {other} name the same file '
                                 f'{path}')
        check_output(path, flag, flag in directories)


class Outputs:
    r"""The outputs of one command (see the module docstring), checked by
    :func:`check_outputs` (same arguments) when created."""

    def __init__(self, inputs: dict[str, Path | None],
                 outputs: dict[str, Path | None],
                 directories: set[str] | None = None,
                 allowed: set[tuple[str, str]] | None = None) -> None:
        check_outputs(inputs, outputs, directories, allowed)
        self.paths = {flag: Path(path) for flag, path in outputs.items()
                      if path is not None}
        self.directories = directories or set()
        self._staged: dict[str, Path] = {}
        self._made: list[Path] = []

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, kind: type[BaseException] | None,
                 error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._discard()

    @contextlib.contextmanager
    def stage(self, flag: str) -> Iterator[Path]:
        r"""Yields a temporary path (a file, or a fresh directory for a
        directory output) beside ``flag``'s destination, to be written in
        the block. An :class:`OSError` raised there (disk full, file too
        large) is re-raised naming ``flag`` and the destination."""
        path = self.paths[flag]
        target = Path(os.path.realpath(path))
        try:
            self._make_parents(target.parent)
            if flag in self.directories:
                tmp = Path(tempfile.mkdtemp(dir=target.parent,
                                            prefix=f'.{target.name}.',
                                            suffix='.tmp'))
            else:
                fd, name = tempfile.mkstemp(dir=target.parent,
                                            prefix=f'.{target.name}.',
                                            suffix='.tmp')
                os.close(fd)
                tmp = Path(name)
                os.chmod(tmp, file_mode(target))  # kept by atomic_write
            self._staged[flag] = tmp
            yield tmp
        except OSError as error:
            reason = os.strerror(error.errno) if error.errno else str(error)
            raise OSError(error.errno, f'cannot write {flag} {path}: '
                          f'{reason}') from None

    def commit(self) -> None:
        r"""Moves every staged output onto its destination (file outputs by
        one :func:`os.replace` each, with the mode of
        :func:`~ltc_pyg.data.io.file_mode` and through a symlink to its
        target; a directory output's files into the directory, keeping files
        already there)."""
        for flag, tmp in self._staged.items():
            path = Path(os.path.realpath(self.paths[flag]))
            if flag in self.directories:
                path.mkdir(exist_ok=True)
                for item in sorted(tmp.iterdir()):
                    os.replace(item, path / item.name)
                tmp.rmdir()
                continue
            os.replace(tmp, path)
        self._staged.clear()
        self._made.clear()

    def _make_parents(self, directory: Path) -> None:
        missing = []
        while not directory.exists():
            missing.append(directory)
            directory = directory.parent
        for folder in reversed(missing):
            folder.mkdir()
            self._made.append(folder)

    def _discard(self) -> None:
        for tmp in self._staged.values():
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        self._staged.clear()
        for folder in reversed(self._made):
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._made.clear()
