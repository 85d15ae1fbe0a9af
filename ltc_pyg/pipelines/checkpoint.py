r"""Checkpoints: ours, and the original project's released ``.pth`` files.

Ours is a dict saved with :func:`torch.save` (atomically)::

    {'format': 'ltc_pyg', 'version': 1, 'method': 'gcn-v',
     'params': {...}, 'knn': {...}, 'seed': 0, 'state': method.state_dict(),
     'rng': {'torch': ByteTensor, 'cuda': [ByteTensor, ...],
             'numpy': {...}}}

``rng`` holds the global random states at the moment of saving (dropout
draws from torch's), so that training resumed from a checkpoint continues
bit-identically; older checkpoints without it still load.

A learned method's ``state`` carries its own ``version``
(:data:`~ltc_pyg.pipelines.training.STATE_VERSION`); older states, and
parameters a method has since renamed
(:meth:`~ltc_pyg.pipelines.methods.ClusteringMethod.upgrade_params`), are
read into today's layout.

The original's (mmcv) is ``{'meta': {...}, 'state_dict': {...}}``; it is
detected and handed to the method's
:meth:`~ltc_pyg.pipelines.methods.ClusteringMethod.load_original_state_dict`.
Both load with ``torch.load(weights_only=True)``: no pickled code runs.
"""
from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ltc_pyg.config import KNNConfig, from_dict, to_dict
from ltc_pyg.data.io import atomic_write
from ltc_pyg.pipelines.methods import (
    METHODS,
    ClusteringMethod,
    build_method,
    get_method,
)

FORMAT = 'ltc_pyg'
VERSION = 1


def save_checkpoint(path: str | Path, method: ClusteringMethod,
                    knn: KNNConfig) -> None:
    r"""Writes ``method``'s trained state, parameters and kNN settings to
    ``path`` atomically (a crash never leaves a truncated checkpoint)."""
    payload = {'format': FORMAT, 'version': VERSION, 'method': method.name,
               'params': to_dict(method.params), 'knn': to_dict(knn),
               'seed': method.seed, 'state': method.state_dict(),
               'rng': rng_state()}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_write(path) as f:
        f.write(buffer.getbuffer())


def rng_state() -> dict[str, Any]:
    r"""The global random states of torch (CPU and every initialised CUDA
    device) and numpy, as tensors and plain values (``weights_only``
    loadable)."""
    _, keys, position, has_gauss, cached = np.random.get_state()
    return {'torch': torch.get_rng_state(),
            'cuda': (torch.cuda.get_rng_state_all()
                     if torch.cuda.is_initialized() else []),
            'numpy': {'keys': torch.from_numpy(keys.astype(np.int64)),
                      'position': int(position), 'has_gauss': int(has_gauss),
                      'cached_gaussian': float(cached)}}


def set_rng_state(state: dict[str, Any]) -> None:
    r"""Restores the states of :func:`rng_state` (CUDA states only where as
    many devices are initialised)."""
    torch.set_rng_state(state['torch'])
    if state['cuda'] and torch.cuda.is_initialized() and len(
            state['cuda']) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state['cuda'])
    numpy = state['numpy']
    np.random.set_state(('MT19937', numpy['keys'].numpy().astype(np.uint32),
                         numpy['position'], numpy['has_gauss'],
                         numpy['cached_gaussian']))


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    r"""Loads a checkpoint file (ours or the original's) without running
    pickled code."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f'Checkpoint path {path} is a directory, not '
                                f'a file')
    if not path.is_file():
        raise FileNotFoundError(f'Checkpoint file not found: {path}')
    try:
        payload = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # torch raises many types for bad files
        # Torch's own message may advise turning the safety check off.
        kind = ('holds Python objects other than tensors and containers '
                '(only those load: no pickled code runs)'
                if 'Unsupported global' in str(error)
                else 'is truncated, corrupt or not a torch file')
        raise ValueError(f'{path} is not a readable checkpoint: it {kind} '
                         f'({type(error).__name__})') from None
    if not isinstance(payload, dict):
        raise ValueError(f'{path} is not a checkpoint (got a '
                         f'{type(payload).__name__})')
    return payload


def is_original_checkpoint(payload: dict[str, Any]) -> bool:
    r"""Whether a loaded checkpoint is the original project's mmcv format."""
    return payload.get('format') != FORMAT and 'state_dict' in payload


def load_method(path: str | Path, name: str, params: Any = None,
                restore_rng: bool = False, **kwargs: Any
                ) -> tuple[ClusteringMethod, KNNConfig | None]:
    r"""Builds method ``name`` from a checkpoint.

    For our checkpoints the stored parameters are used, with ``params``
    over them, and the stored kNN settings are returned (and set as the
    method's ``trained_knn``); for original checkpoints ``params`` (or the
    defaults) apply and the kNN settings are ``None``.

    Args:
        path (str): Checkpoint file.
        name (str): Method the checkpoint must belong to.
        params (optional): Parameters overriding the stored ones: a
            mapping replaces the keys it names (nested ones too, e.g.
            ``{'train': {'steps': 5}}``), a ``Params`` instance all of them.
        restore_rng (bool, optional): Restore the global random states
            saved with the checkpoint (to resume training bit-identically).
            (default: :obj:`False`)
        **kwargs: ``device``, ``seed``, ``progress_bar``.
    """
    payload = read_checkpoint(path)
    if is_original_checkpoint(payload):
        method = build_method(name, params, **kwargs)
        with _naming(path, name):
            method.load_original_state_dict(payload['state_dict'])
        return method, None
    if payload.get('format') != FORMAT:
        raise ValueError(f'{path} is neither an ltc_pyg checkpoint nor an '
                         f"original one (keys: {sorted(payload)[:8]})")
    # Names registered for the same class (aliases) share checkpoints.
    if METHODS.get(payload['method'], payload['method']) != METHODS.get(
            name, name):
        raise ValueError(f"{path} holds a '{payload['method']}' model, not "
                         f"'{name}'")
    with _naming(path, name):
        cls = get_method(name)
        stored = cls.upgrade_params(payload['params'])
        if params is None:
            params = stored
        elif isinstance(params, dict):  # the keys given, over the stored
            params = from_dict(cls.Params, params, f'{name} params',
                               base=from_dict(cls.Params, stored,
                                              f'{path} params'))
        method = build_method(name, params, **kwargs)
        method.load_state_dict(payload['state'])
    method.trained_knn = from_dict(KNNConfig, payload['knn'])
    if restore_rng and 'rng' in payload:
        set_rng_state(payload['rng'])
    return method, method.trained_knn


@contextlib.contextmanager
def _naming(path: str | Path, name: str) -> Iterator[None]:
    r"""Re-raises a state that does not fit the method (torch's size
    mismatches, missing keys) as one :class:`ValueError` naming the
    checkpoint."""
    try:
        yield
    except (RuntimeError, KeyError, ValueError, TypeError) as error:
        detail = ' '.join(str(error).split())
        if len(detail) > 300:
            detail = detail[:297] + '...'
        raise ValueError(f"{path} does not fit '{name}': {detail}") from None
