r"""Shared fixtures: paths to ../shared/data (skipped where it is absent, as
in a user's clone; CI has it) and a torch device list for CUDA variants."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(os.environ.get(
    'LTC_SHARED_DATA',
    Path(__file__).resolve().parents[1].parent / 'shared' / 'data'))

DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])


def _shared(subdir: str) -> Path:
    path = SHARED_DATA / subdir
    if not path.is_dir():
        pytest.skip(f'{path} is absent (it ships beside the repository as '
                    f'../shared/data; set LTC_SHARED_DATA to point at it)')
    return path


@pytest.fixture
def reference_fixtures() -> Path:
    r"""``../shared/data/reference_fixtures``: golden outputs of the original
    learn-to-cluster code (see its README)."""
    return _shared('reference_fixtures')


@pytest.fixture
def lfw_root() -> Path:
    r"""``../shared/data/lfw_dlib128``: LFW, dlib 128-d (13,233 faces)."""
    return _shared('lfw_dlib128')


@pytest.fixture
def cfp_root() -> Path:
    r"""``../shared/data/cfp_dlib128``: CFP, dlib 128-d (7,000 faces)."""
    return _shared('cfp_dlib128')


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    r"""Every available torch device (CUDA only where present)."""
    return request.param
