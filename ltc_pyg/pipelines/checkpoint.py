r"""Checkpoints: ours, and the original project's released ``.pth`` files.

Ours is a dict saved with :func:`torch.save` (atomically)::

    {'format': 'ltc_pyg', 'version': 1, 'method': 'gcn-v',
     'params': {...}, 'knn': {...}, 'seed': 0, 'state': method.state_dict()}

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

import io
from pathlib import Path
from typing import Any

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
               'seed': method.seed, 'state': method.state_dict()}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_write(path) as f:
        f.write(buffer.getbuffer())


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    r"""Loads a checkpoint file (ours or the original's) without running
    pickled code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'Checkpoint file not found: {path}')
    try:
        payload = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # torch raises many types for bad files
        raise ValueError(f'{path} is not a readable checkpoint: '
                         f'{str(error).splitlines()[0]}') from None
    if not isinstance(payload, dict):
        raise ValueError(f'{path} is not a checkpoint (got a '
                         f'{type(payload).__name__})')
    return payload


def is_original_checkpoint(payload: dict[str, Any]) -> bool:
    r"""Whether a loaded checkpoint is the original project's mmcv format."""
    return payload.get('format') != FORMAT and 'state_dict' in payload


def load_method(path: str | Path, name: str, params: Any = None,
                **kwargs: Any) -> tuple[ClusteringMethod, KNNConfig | None]:
    r"""Builds method ``name`` from a checkpoint.

    For our checkpoints the stored parameters are used unless ``params`` is
    given, and the stored kNN settings are returned (and set as the method's
    ``trained_knn``); for original checkpoints
    ``params`` (or the defaults) apply and the kNN settings are ``None``.

    Args:
        path (str): Checkpoint file.
        name (str): Method the checkpoint must belong to.
        params (optional): Parameters overriding the stored ones.
        **kwargs: ``device``, ``seed``, ``progress_bar``.
    """
    payload = read_checkpoint(path)
    if is_original_checkpoint(payload):
        method = build_method(name, params, **kwargs)
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
    if params is None:
        params = get_method(name).upgrade_params(payload['params'])
    method = build_method(name, params, **kwargs)
    method.load_state_dict(payload['state'])
    method.trained_knn = from_dict(KNNConfig, payload['knn'])
    return method, method.trained_knn
