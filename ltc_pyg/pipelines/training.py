r"""The training framework of every learned method: one schedule
(:class:`TrainParams`), one optimiser factory (:func:`make_optimizer`), one
sampler of mini-batches (:class:`EpochSampler`), and :class:`LearnedMethod`,
the base class that owns the model, the optimiser and the step counter and
runs the one training loop (progress bar, divergence check, periodic
checkpoints, resume).

A learned method is a :class:`LearnedMethod` subclass with

* :meth:`~LearnedMethod.build_model`: the model for ``in_channels`` input
  features (the base seeds its initialisation from the method's seed,
  without touching the caller's random state);
* :meth:`~LearnedMethod.prepare_training`: everything training needs from
  the graph, returned as a :class:`TrainingPlan` (steps per epoch and the
  loss of any step);
* :meth:`~ltc_pyg.pipelines.methods.ClusteringMethod.predict`, using
  :meth:`~LearnedMethod.trained_model`.

Saving and loading checkpoints, resuming and training the method it builds
on (``builds_on``: GCN-E on GCN-V, GCN-S on GCN-D) come from the base.

Every step ``s`` runs with the global torch RNG seeded from the method's
seed and ``s`` (dropout), and draws its batch from ``s`` alone, so a run
resumed from a checkpoint repeats the uninterrupted one exactly.

Under ``torchrun`` (:mod:`ltc_pyg.distributed`) training is data-parallel:
every rank builds the same model and batches, computes the loss of its part
of each batch (:class:`EpochSampler`), and the gradients are averaged over
the ranks before each step, as DDP does. (The method hooks call their
model's own methods, e.g. ``score`` and ``node_context``, which a
``DistributedDataParallel`` wrapper would hide, so the loop does DDP's
all-reduce itself.) With a batch split into equal parts and a loss that is
a mean over its samples, the averaged gradient is the single-process one up
to float rounding.
"""
from __future__ import annotations

import logging
import math
from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NamedTuple

import torch
from torch import Tensor
from torch_geometric.data import Data
from tqdm.auto import tqdm

from ltc_pyg.distributed import (
    average_gradients,
    broadcast_parameters,
    get_rank,
    get_world_size,
    is_main_process,
    mean_over_ranks,
)
from ltc_pyg.pipelines.checkpoint import load_method
from ltc_pyg.pipelines.methods import ClusteringMethod, build_method
from ltc_pyg.pipelines.report import StageTimer

logger = logging.getLogger(__name__)

__all__ = ['TrainParams', 'make_optimizer', 'EpochSampler', 'TrainingPlan',
           'LearnedMethod', 'STATE_VERSION']

#: Version of :meth:`LearnedMethod.state_dict`. Version 1 (before the
#: framework) stored ``in_channels`` (+ ``hidden_channels``,
#: ``compare_to_seed``) and a ``step`` or ``epoch`` counter; it still loads.
STATE_VERSION = 2


@dataclass(frozen=True)
class TrainParams:
    r"""A training schedule, counted in optimiser steps or in epochs.

    Args:
        steps (int, optional): Optimiser steps to run...
        epochs (int, optional): ... or passes over the training samples
            (exactly one of the two is set; set the other to ``null``).
        batch_size (int, optional): Samples per step (seed nodes, candidate
            subgraphs, proposals, pivots); ``None``: all of them.
        samples_per_epoch (int, optional): Samples drawn (without
            replacement) per epoch; ``None``: all.
        optimizer (str): ``'sgd'`` (with ``momentum``) or ``'adam'``.
        lr (float): Initial learning rate.
        momentum (float): SGD momentum.
        weight_decay (float): L2 penalty.
        milestones (tuple of float): Fractions of the schedule (of
            ``steps``, or of ``epochs``: then the rate changes between
            epochs) after which the learning rate is multiplied by
            ``gamma``.
        gamma (float): Learning-rate factor at each milestone.
        save_every (int): Steps (or epochs) between checkpoints (``0``: at
            the end only).
    """
    steps: int | None = None
    epochs: int | None = 1
    batch_size: int | None = None
    samples_per_epoch: int | None = None
    optimizer: Literal['sgd', 'adam'] = 'sgd'
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-5
    milestones: tuple[float, ...] = ()
    gamma: float = 0.1
    save_every: int = 0

    def __post_init__(self) -> None:
        if (self.steps is None) == (self.epochs is None):
            raise ValueError(f'train needs exactly one of steps and epochs '
                             f'(got steps={self.steps}, epochs='
                             f'{self.epochs}); set the other to null')
        if self.length < 0 or self.lr <= 0 or self.save_every < 0:
            raise ValueError(f'train needs steps/epochs >= 0, lr > 0 and '
                             f'save_every >= 0 (got {self.unit}s='
                             f'{self.length}, lr={self.lr}, save_every='
                             f'{self.save_every})')
        for name in ('batch_size', 'samples_per_epoch'):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f'train.{name} must be positive (got '
                                 f'{value})')

    @property
    def unit(self) -> Literal['step', 'epoch']:
        r"""What :attr:`length`, ``milestones`` and ``save_every`` count."""
        return 'step' if self.steps is not None else 'epoch'

    @property
    def length(self) -> int:
        r"""``steps`` or ``epochs``."""
        return self.steps if self.steps is not None else self.epochs

    def total_steps(self, steps_per_epoch: int) -> int:
        r"""Optimiser steps of the whole schedule."""
        if self.steps is not None:
            return self.steps
        return self.epochs * steps_per_epoch

    def _units(self, step: int, steps_per_epoch: int) -> int:
        return step if self.steps is not None else step // steps_per_epoch

    def lr_at(self, step: int, steps_per_epoch: int = 1) -> float:
        r"""The learning rate of step ``step`` (0-based):
        :math:`\mathrm{lr}\,\gamma^{\#\{m : u \ge m L\}}` with ``u`` the
        step (or its epoch) and ``L`` the schedule's length."""
        units = self._units(step, steps_per_epoch)
        passed = sum(units >= m * self.length for m in self.milestones)
        return self.lr * self.gamma**passed

    def saves_after(self, done: int, steps_per_epoch: int) -> bool:
        r"""Whether a periodic checkpoint is due after ``done`` steps (the
        final one is always written by the caller)."""
        every = self.save_every * (1 if self.steps is not None
                                   else steps_per_epoch)
        return (every > 0 and 0 < done < self.total_steps(steps_per_epoch)
                and done % every == 0)


def make_optimizer(model: torch.nn.Module, train: TrainParams
                   ) -> torch.optim.Optimizer:
    r"""A fresh optimiser of ``model``'s parameters for ``train``."""
    if train.optimizer == 'adam':
        return torch.optim.Adam(model.parameters(), lr=train.lr,
                                weight_decay=train.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=train.lr,
                           momentum=train.momentum,
                           weight_decay=train.weight_decay)


def step_seed(seed: int, index: int) -> int:
    r"""The seed of step (or epoch) ``index`` of a run seeded ``seed``."""
    return seed * 1_000_003 + index


@contextmanager
def seeded_rng(seed: int, device: str = 'cpu') -> Iterator[None]:
    r"""Runs the block with torch's global RNG (CPU, and ``device`` when it
    is a GPU) seeded with ``seed``, restoring the caller's state after."""
    device = torch.device(device)
    devices = [device.index or 0] if device.type == 'cuda' else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


class EpochSampler:
    r"""Mini-batches of sample ids addressed by step: epoch ``e`` is a
    permutation of ``range(num_samples)`` seeded by ``seed`` and ``e``, cut
    to ``limit`` samples and into batches of ``batch_size``; step ``s``
    takes batch ``s mod steps_per_epoch`` of epoch
    ``s // steps_per_epoch``.

    In a :mod:`torch.distributed` group every rank draws the same batch and
    keeps its part, ``batch[rank::world_size]`` (data parallelism: the
    training loop averages the ranks' gradients).

    Args:
        num_samples (int): Samples to draw from.
        batch_size (int, optional): Samples per batch (all if ``None``).
        seed (int): The run's seed.
        limit (int, optional): Samples per epoch (all if ``None``).
    """
    def __init__(self, num_samples: int, batch_size: int | None, seed: int,
                 limit: int | None = None) -> None:
        if num_samples < 1:
            raise ValueError('EpochSampler needs at least one sample')
        self.num_samples = num_samples
        self.per_epoch = min(num_samples, limit or num_samples)
        self.batch_size = min(batch_size or self.per_epoch, self.per_epoch)
        self.seed = seed
        self.steps_per_epoch = math.ceil(self.per_epoch / self.batch_size)
        self.rank, self.world_size = get_rank(), get_world_size()
        smallest = self.per_epoch - (self.steps_per_epoch - 1) * (
            self.batch_size)
        if smallest < self.world_size:
            raise ValueError(f'A batch of {smallest} samples cannot be split '
                             f'over {self.world_size} ranks; raise '
                             f'train.batch_size (got {batch_size}) or use '
                             f'fewer processes')
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)

    @property
    def whole(self) -> bool:
        r"""Whether every step takes all the samples in one process (the
        full graph, no sampling)."""
        return self.batch_size == self.num_samples and self.world_size == 1

    def __call__(self, step: int) -> Tensor:
        r"""The ids ``[B]`` of step ``step`` (this rank's part of them)."""
        epoch, index = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(step_seed(self.seed,
                                                                epoch))
            self._epoch = epoch
            self._order = torch.randperm(self.num_samples,
                                         generator=generator)
        start = index * self.batch_size
        return self._order[start:min(start + self.batch_size,
                                     self.per_epoch)][self.rank::
                                                      self.world_size]


class TrainingPlan(NamedTuple):
    r"""What :meth:`LearnedMethod.prepare_training` returns:
    ``steps_per_epoch`` and ``loss_at(step)``, the loss of step ``step``
    (the model is in training mode; the loop does the rest)."""
    steps_per_epoch: int
    loss_at: Callable[[int], Tensor]


def show_progress(progress_bar: bool | None, steps: int) -> bool:
    r"""The one rule of training progress bars: as asked, else shown for
    more than 20 steps."""
    return steps > 20 if progress_bar is None else progress_bar


class LearnedMethod(ClusteringMethod):
    r"""Base class of the learned methods (see the module docstring).

    Attributes:
        model (torch.nn.Module): The model, once built.
        optimizer (torch.optim.Optimizer): Its optimiser, once training ran
            (kept in checkpoints to resume).
        step (int): Optimiser steps done.
        trained (bool): Whether the schedule has run to its end (or the
            model came from a released checkpoint).
        model_kwargs (dict): The arguments the model was built with
            (:meth:`build_model`'s), stored in checkpoints.
        base (LearnedMethod): With ``builds_on``, the method this one builds
            on.
    """
    trainable = True
    #: Name of the model in messages and stage names (``'GCN-V'``).
    label: ClassVar[str]
    #: ``(method, params field)`` of the method this one builds on: its
    #: parameters are ``params.<field>``, a checkpoint of it may be given as
    #: ``params.<field>_checkpoint``, and it is trained first otherwise.
    builds_on: ClassVar[tuple[str, str] | None] = None
    #: Model arguments that version-1 checkpoints did not store, and the
    #: value they mean there.
    legacy_model_kwargs: ClassVar[dict[str, Any]] = {}
    #: Further attributes learned in training and saved with the state
    #: (plain values, e.g. a temperature read from the training graph).
    state_attributes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Any = None, device: str = 'cpu', seed: int = 0,
                 progress_bar: bool | None = None) -> None:
        super().__init__(params, device, seed, progress_bar)
        self.model: torch.nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.step = 0
        self.trained = False
        self.model_kwargs: dict[str, Any] = {}
        self._legacy_epochs: int | None = None
        self.base: LearnedMethod | None = None
        self._base_loaded = False
        if self.builds_on is not None:
            name, field = self.builds_on
            self.base = build_method(name, getattr(self.params, field),
                                     device=device, seed=seed,
                                     progress_bar=progress_bar)

    # -- the hooks ---------------------------------------------------------
    @abstractmethod
    def build_model(self, in_channels: int, **kwargs: Any
                    ) -> torch.nn.Module:
        r"""A freshly initialised model for ``in_channels`` features;
        ``kwargs`` are what :attr:`model_kwargs` stores besides
        ``in_channels`` (read from the weights of released checkpoints)."""

    @abstractmethod
    def prepare_training(self, graph: Data, timer: StageTimer
                         ) -> TrainingPlan:
        r"""Builds the model (:meth:`build`) and everything training needs
        from ``graph`` (which has ``y``)."""

    # -- the model ---------------------------------------------------------
    def build(self, in_channels: int, **kwargs: Any) -> torch.nn.Module:
        r"""The model, built by :meth:`build_model` on first use (its
        initialisation seeded by the method's seed, the caller's RNG state
        left alone); later calls check ``in_channels``."""
        if self.model is None:
            with seeded_rng(self.seed):
                model = self.build_model(in_channels, **kwargs)
            self.model = model.to(self.device)
            self.model_kwargs = {'in_channels': in_channels, **kwargs}
        elif self.model_kwargs['in_channels'] != in_channels:
            raise ValueError(f"The {self.label} model takes "
                             f"{self.model_kwargs['in_channels']} features "
                             f'but gets {in_channels}; was it trained on '
                             f'another embedding?')
        return self.model

    def require_model(self) -> None:
        r"""An error if there is no trained model."""
        if self.model is None:
            raise ValueError(f"'{self.name}' has no trained {self.label} "
                             f"model; train one ('ltc-pyg train "
                             f"{self.name}') or give a checkpoint")

    def check_ready(self) -> None:
        r"""A trained model, and a threshold left unset has been chosen in
        training (:attr:`threshold`)."""
        self.require_model()
        if self.threshold_name is not None:
            self.threshold  # noqa: B018  (raises when there is none)

    def trained_model(self, in_channels: int) -> torch.nn.Module:
        r"""The model in evaluation mode, checked to take ``in_channels``
        features; an error if there is none."""
        self.require_model()
        return self.build(in_channels).eval()

    def load_model(self, state_dict: dict[str, Tensor], in_channels: int,
                   **kwargs: Any) -> None:
        r"""A fully trained model from converted released weights."""
        self.model, self.optimizer = None, None
        self.build(in_channels, **kwargs).load_state_dict(state_dict)
        self.step, self.trained = 0, True

    # -- the method it builds on -------------------------------------------
    def _base_checkpoint(self) -> str | None:
        return getattr(self.params, f'{self.builds_on[1]}_checkpoint')

    def load_base(self) -> None:
        r"""Loads ``params.<field>_checkpoint`` into :attr:`base`, once."""
        if self.builds_on is None or self._base_loaded:
            return
        name, field = self.builds_on
        path = self._base_checkpoint()
        if path is None:
            return
        self.base = load_method(path, name, getattr(self.params, field),
                                device=self.device, seed=self.seed,
                                progress_bar=self.progress_bar)[0]
        self._base_loaded = True
        logger.info('%s loaded from %s', self.base.label, path)

    def require_base_checkpoint(self, original: str, base: str) -> None:
        r"""Released checkpoints (``original``) of this method come without
        the one it builds on (``base``): it must be given."""
        name, field = self.builds_on
        if self._base_checkpoint() is None:
            raise ValueError(f'An original {original} needs the {name} it '
                             f'was trained with: add --param '
                             f'{field}_checkpoint={base}')

    # -- training ----------------------------------------------------------
    def fit(self, graph: Data, timer: StageTimer | None = None,
            save: Callable[[], None] | None = None) -> None:
        r"""Trains the method it builds on first (unless it is given as a
        checkpoint or already trained), then runs
        :meth:`prepare_training`'s plan from :attr:`step` to the end of the
        schedule."""
        timer = timer or StageTimer()
        self.load_base()
        if (self.base is not None and not self.base.trained
                and self._base_checkpoint() is None):
            self.base.fit(graph, timer, save)
        plan = self.prepare_training(graph, timer)
        with timer(f'{self.label} training'):
            self._run(plan, save)
        self.trained = True

    def _run(self, plan: TrainingPlan, save: Callable[[], None] | None
             ) -> None:
        train, per_epoch = self.params.train, plan.steps_per_epoch
        if self._legacy_epochs is not None:  # a version-1 epoch counter
            self.step, self._legacy_epochs = (self._legacy_epochs * per_epoch,
                                              None)
        total = train.total_steps(per_epoch)
        if self.optimizer is None:
            self.optimizer = make_optimizer(self.model, train)
        broadcast_parameters(self.model)
        bar = tqdm(total=total, initial=min(self.step, total),
                   desc=f'{self.label} training',
                   disable=not (show_progress(self.progress_bar,
                                              total - self.step)
                                and is_main_process()))
        while self.step < total:
            for group in self.optimizer.param_groups:
                group['lr'] = train.lr_at(self.step, per_epoch)
            self.model.train()
            with seeded_rng(step_seed(self.seed, self.step), self.device):
                loss = plan.loss_at(self.step)
            value = mean_over_ranks(loss).item()
            if not math.isfinite(value):
                raise RuntimeError(f'{self.label} training diverged at step '
                                   f'{self.step} (loss {value}); lower '
                                   f'train.lr')
            self.optimizer.zero_grad()
            loss.backward()
            average_gradients(self.model)
            self.optimizer.step()
            self.step += 1
            bar.update()
            if train.unit == 'epoch':
                bar.set_postfix(epoch=(self.step - 1) // per_epoch,
                                loss=f'{value:.4f}')
            else:
                bar.set_postfix(loss=f'{value:.4f}')
            if save is not None and train.saves_after(self.step, per_epoch):
                save()
        bar.close()
        logger.info('%s trained to step %d (%d per epoch)', self.label,
                    self.step, per_epoch)

    # -- checkpoints -------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        r"""Model arguments and weights, optimiser, step counter, the
        threshold chosen in training and :attr:`state_attributes`, and the
        state of the method it builds on (while that one trains first, no
        model of this one yet)."""
        if self.model is None and self.base is None:
            raise ValueError(f"'{self.name}' has no {self.label} model to "
                             f"save")
        state = {'version': STATE_VERSION,
                 'model_kwargs': self.model_kwargs or None,
                 'model': (None if self.model is None
                           else self.model.state_dict()),
                 'optimizer': (None if self.optimizer is None
                               else self.optimizer.state_dict()),
                 'step': self.step, 'trained': self.trained,
                 'attributes': {name: getattr(self, name) for name in
                                ('trained_threshold',
                                 *self.state_attributes)}}
        if self.base is not None:
            state[self.builds_on[1]] = self.base.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        version = state.get('version', 1)
        if version > STATE_VERSION:
            raise ValueError(f"'{self.name}' state of version {version} is "
                             f'newer than this code reads ({STATE_VERSION})')
        if version == 1:
            state = self._upgrade_v1(state)
        if self.base is not None:
            self.base.load_state_dict(state[self.builds_on[1]])
            self._base_loaded = True
        self.model, self.optimizer = None, None
        self.step, self.trained = int(state['step']), bool(state['trained'])
        self._legacy_epochs = state.get('legacy_epochs')
        for name, value in state['attributes'].items():
            setattr(self, name, value)
        if state['model'] is None:
            return
        kwargs = dict(state['model_kwargs'])
        model = self.build(int(kwargs.pop('in_channels')), **kwargs)
        model.load_state_dict(state['model'])
        if state['optimizer'] is not None:
            self.optimizer = make_optimizer(model, self.params.train)
            self.optimizer.load_state_dict(state['optimizer'])

    def _upgrade_v1(self, state: dict[str, Any]) -> dict[str, Any]:
        r"""A version-1 state in the version-2 layout."""
        kwargs = None
        if state.get('model') is not None:
            kwargs = {'in_channels': int(state['in_channels'])}
            if state.get('hidden_channels') is not None:
                kwargs['hidden_channels'] = tuple(state['hidden_channels'])
            for name, legacy in self.legacy_model_kwargs.items():
                value = state.get(name)
                kwargs[name] = legacy if value is None else value
        # GCN-D/GCN-S counted epochs (turned into steps once training knows
        # the epoch's length), the others steps; L-GCN counted steps of an
        # epoch schedule, whose end needs the graph: taken as reached.
        train = self.params.train
        unit = 'epoch' if 'epoch' in state else 'step'
        done = int(state.get(unit, 0))
        upgraded = {'step': done if unit == 'step' else 0,
                    'trained': unit != train.unit or done >= train.length}
        if unit == 'epoch':
            upgraded['legacy_epochs'] = done
        upgraded.update(model_kwargs=kwargs, model=state.get('model'),
                        optimizer=state.get('optimizer'),
                        attributes={name: state[name]
                                    for name in self.state_attributes
                                    if name in state})
        if self.base is not None:
            upgraded[self.builds_on[1]] = state[self.builds_on[1]]
        return upgraded
