r"""Synthetic face-like embeddings for tests, examples and the default main
job: deterministic by seed, no download.

Generative model (all sizes and strengths are arguments):

* **identities** have centres on a random ``manifold_dim``-dimensional
  subspace of :math:`\mathbb{R}^D` (unit vectors), so unrelated identities
  have cosine :math:`\approx 0 \pm 1/\sqrt{\text{manifold\_dim}}`;
* **hard negatives**: a fraction ``sibling_fraction`` of identities are
  "siblings" of an earlier identity, with centre cosine drawn from
  ``sibling_similarity``;
* **long-tailed sizes**: lognormal with mean ``mean_size`` and log-std
  ``size_sigma``, clipped to ``[min_size, max_size]``;
* **samples**: :math:`x = \text{normalize}(c + s_{id} q \, g)` with
  :math:`g \sim \mathcal{N}(0, I/D)`, a per-identity spread :math:`s_{id}`
  and a per-sample quality factor :math:`q`;
* **low-quality samples** (``low_quality_fraction``): their noise is
  amplified and they are pulled towards one shared "blur" direction, so they
  bridge identities, the classic failure of threshold linking.

:func:`make_splits` draws a train and a test split with disjoint identities
from one shared world (same subspace and blur direction), so that a model
trained on one transfers to the other.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from ltc_pyg.data.io import write_features, write_labels


class EmbeddingSet(NamedTuple):
    r"""Features ``x`` (float32 ``[N, D]``, unit rows) and identity
    ``labels`` (int64 ``[N]``)."""
    x: np.ndarray
    labels: np.ndarray


class _World(NamedTuple):
    basis: np.ndarray  # [manifold_dim, D], orthonormal rows
    blur: np.ndarray  # [D], unit


def _make_world(dim: int, manifold_dim: int,
                rng: np.random.Generator) -> _World:
    q, _ = np.linalg.qr(rng.standard_normal((dim, min(manifold_dim, dim))))
    blur = rng.standard_normal(dim)
    return _World(q.T, blur / np.linalg.norm(blur))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _make_identities(world: _World, num_identities: int, mean_size: float,
                     size_sigma: float, min_size: int, max_size: int,
                     spread: float, sibling_fraction: float,
                     sibling_similarity: tuple[float, float],
                     low_quality_fraction: float, label_offset: int,
                     rng: np.random.Generator) -> EmbeddingSet:
    manifold_dim, dim = world.basis.shape
    centers = _unit(rng.standard_normal((num_identities, manifold_dim))
                    @ world.basis)
    # Siblings: identity i (i > 0) copies an earlier identity's direction
    # with cosine in sibling_similarity; vectorised over all siblings.
    is_sibling = rng.random(num_identities) < sibling_fraction
    is_sibling[0] = False
    siblings = np.flatnonzero(is_sibling)
    parents = (rng.random(siblings.size) * siblings).astype(np.int64)
    cosine = rng.uniform(*sibling_similarity, size=siblings.size)[:, None]
    parent_dir = centers[parents]
    other = centers[siblings] - np.sum(centers[siblings] * parent_dir, axis=1,
                                       keepdims=True) * parent_dir
    centers[siblings] = (cosine * parent_dir +
                         np.sqrt(1 - cosine**2) * _unit(other))

    mu = np.log(mean_size) - size_sigma**2 / 2
    sizes = np.clip(np.round(rng.lognormal(mu, size_sigma, num_identities)),
                    min_size, max_size).astype(np.int64)
    labels = np.repeat(np.arange(num_identities), sizes)
    num_samples = labels.size

    identity_spread = spread * rng.lognormal(0.0, 0.25, num_identities)
    quality = rng.lognormal(0.0, 0.15, num_samples)
    low = rng.random(num_samples) < low_quality_fraction
    quality[low] *= 1.6
    noise = rng.standard_normal((num_samples, dim)) / np.sqrt(dim)
    x = centers[labels] + (identity_spread[labels] * quality)[:, None] * noise
    pull = rng.uniform(0.5, 1.0, int(low.sum()))[:, None]
    jitter = rng.standard_normal((int(low.sum()), dim)) * 0.3 / np.sqrt(dim)
    x[low] += pull * (world.blur + jitter)

    order = rng.permutation(num_samples)
    return EmbeddingSet(_unit(x[order]).astype(np.float32),
                        labels[order] + label_offset)


def make_splits(num_train_identities: int = 1000,
                num_test_identities: int = 1000, dim: int = 256,
                mean_size: float = 60.0, size_sigma: float = 0.8,
                min_size: int = 2, max_size: int = 600, spread: float = 1.1,
                manifold_dim: int = 128, sibling_fraction: float = 0.25,
                sibling_similarity: tuple[float, float] = (0.4, 0.65),
                low_quality_fraction: float = 0.05,
                seed: int = 0) -> dict[str, EmbeddingSet]:
    r"""Draws ``{'train': ..., 'test': ...}`` with disjoint identities.

    Test labels are offset by ``num_train_identities``. Each split uses its
    own child stream of ``numpy.random.SeedSequence(seed)``, so the size of
    one split never changes the other. With the defaults each split has
    ~60K samples of 1000 identities (sizes 2..600).

    Args:
        num_train_identities (int): Identities in the train split.
        num_test_identities (int): Identities in the test split.
        dim (int): Feature dimension ``D``.
        mean_size (float): Mean identity size.
        size_sigma (float): Log-std of identity sizes (long tail).
        min_size (int): Smallest identity.
        max_size (int): Largest identity.
        spread (float): Noise scale; same-identity cosine is roughly
            :math:`1 / (1 + \text{spread}^2)`.
        manifold_dim (int): Dimension of the subspace of centres.
        sibling_fraction (float): Fraction of hard-negative identities.
        sibling_similarity (tuple): Range of sibling centre cosines.
        low_quality_fraction (float): Fraction of blurry, bridging samples.
        seed (int): Seed of everything.
    """
    if min(num_train_identities, num_test_identities) < 1:
        raise ValueError('Each split needs at least one identity (got '
                         f'{num_train_identities} and {num_test_identities})')
    if not 1 <= min_size <= max_size:
        raise ValueError(f'Need 1 <= min_size <= max_size (got {min_size}, '
                         f'{max_size})')
    world_seq, train_seq, test_seq = np.random.SeedSequence(seed).spawn(3)
    world = _make_world(dim, manifold_dim, np.random.default_rng(world_seq))
    shared = dict(mean_size=mean_size, size_sigma=size_sigma,
                  min_size=min_size, max_size=max_size, spread=spread,
                  sibling_fraction=sibling_fraction,
                  sibling_similarity=sibling_similarity,
                  low_quality_fraction=low_quality_fraction)
    return {
        'train': _make_identities(world, num_train_identities,
                                  label_offset=0,
                                  rng=np.random.default_rng(train_seq),
                                  **shared),
        'test': _make_identities(world, num_test_identities,
                                 label_offset=num_train_identities,
                                 rng=np.random.default_rng(test_seq),
                                 **shared),
    }


def write_split(root: str | Path, name: str, split: EmbeddingSet) -> None:
    r"""Writes ``features/<name>.bin`` and ``labels/<name>.meta`` under
    ``root`` (the original layout), atomically."""
    root = Path(root)
    write_features(root / 'features' / f'{name}.bin', split.x)
    write_labels(root / 'labels' / f'{name}.meta', split.labels)
