r"""Running on several processes with :mod:`torch.distributed`.

``torchrun --nproc-per-node R ltc-pyg ...`` starts ``R`` copies of the
command; each reads its rank and the world size from the environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``) and :func:`init_from_env` joins them into one process
group: gloo on CPU, NCCL on CUDA (one GPU per process, ``cuda:LOCAL_RANK``).
The same command with ``--nnodes`` and ``--rdzv-endpoint`` spans machines.

What each stage does with ``R`` processes:

* kNN search: every rank indexes one contiguous shard of the base, searches
  every query against it, and the candidates of all shards are merged into
  the global top-``k`` (:mod:`ltc_pyg.graph.sharded_knn`);
* inference of the learned methods: each rank computes a contiguous range
  of nodes (:func:`node_range`), then :func:`all_gather_rows` joins them;
* training: each rank takes its part of every mini-batch
  (:class:`~ltc_pyg.pipelines.training.EpochSampler`) and the gradients are
  averaged over the ranks before every optimiser step
  (:func:`average_gradients`), which is what DDP does;
* the final merge (connected components, Infomap) and the writing of files
  run on rank 0 (:func:`run_on_main`), whose result is broadcast.

Without a process group (a plain run) every helper is the identity: one
rank, world size 1.
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

logger = logging.getLogger(__name__)

T = TypeVar('T')

# Inside run_on_main the main rank works alone: no collectives.
_alone = False


def launched_world_size() -> int:
    r"""``WORLD_SIZE`` as set by ``torchrun`` (``1`` when not launched by
    it)."""
    return int(os.environ.get('WORLD_SIZE', '1'))


def init_from_env(device: str = 'cpu') -> str:
    r"""Joins the process group that ``torchrun`` describes in the
    environment, if any, and returns the device of this rank.

    Args:
        device (str, optional): ``'cpu'`` (gloo) or ``'cuda'`` (NCCL; each
            rank takes ``cuda:LOCAL_RANK``). (default: ``'cpu'``)

    Returns:
        str: ``device``, or ``'cuda:LOCAL_RANK'`` for ``'cuda'`` under
        ``torchrun``.
    """
    if launched_world_size() <= 1:
        return device
    cuda = device.startswith('cuda')
    if cuda:
        local_rank = int(os.environ.get('LOCAL_RANK', '0'))
        device = f'cuda:{local_rank}'
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group('nccl' if cuda else 'gloo')
        logger.info('Rank %d of %d joined the %s process group',
                    dist.get_rank(), dist.get_world_size(), dist.get_backend())
    return device


def close_process_group() -> None:
    r"""Leaves the process group, if one was joined."""
    if dist.is_initialized():
        dist.destroy_process_group()


def get_world_size() -> int:
    r"""Processes in the group (``1`` without one, or inside
    :func:`run_on_main`)."""
    if _alone or not dist.is_initialized():
        return 1
    return dist.get_world_size()


def get_rank() -> int:
    r"""This process's rank (``0`` without a group)."""
    if _alone or not dist.is_initialized():
        return 0
    return dist.get_rank()


def is_main_process() -> bool:
    r"""Whether this is rank 0, the one that merges and writes files."""
    return not dist.is_initialized() or dist.get_rank() == 0


def node_range(num_items: int, rank: int | None = None,
               world_size: int | None = None) -> range:
    r"""The contiguous part of ``range(num_items)`` of ``rank``: rank
    :math:`r` of :math:`R` takes :math:`[\lfloor rN/R \rfloor,
    \lfloor (r+1)N/R \rfloor)`.

    Args:
        num_items (int): Items to split (nodes, base rows).
        rank (int, optional): The rank (default: this process's).
        world_size (int, optional): The ranks (default: the group's).
    """
    rank = get_rank() if rank is None else rank
    world_size = get_world_size() if world_size is None else world_size
    return range(rank * num_items // world_size,
                 (rank + 1) * num_items // world_size)


def _comm_device() -> torch.device:
    if dist.get_backend() == 'nccl':
        return torch.device('cuda', torch.cuda.current_device())
    return torch.device('cpu')


def all_gather_rows(part: Tensor) -> Tensor:
    r"""Concatenates every rank's ``part`` (``[n_r, ...]``, the same trailing
    shape and dtype everywhere, ``n_r`` free) in rank order; every rank gets
    the whole ``[sum n_r, ...]`` on ``part``'s device."""
    if get_world_size() == 1:
        return part
    device = _comm_device()
    sizes = [torch.zeros(1, dtype=torch.long, device=device)
             for _ in range(get_world_size())]
    dist.all_gather(sizes, torch.tensor([part.size(0)], device=device))
    longest = int(max(size.item() for size in sizes))
    padded = part.new_zeros((longest, *part.shape[1:]), device=device)
    padded[:part.size(0)] = part
    gathered = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(gathered, padded)
    return torch.cat([chunk[:int(size.item())] for chunk, size
                      in zip(gathered, sizes, strict=True)]).to(part.device)


def all_gather_stacked(part: Tensor) -> Tensor:
    r"""Stacks every rank's ``part`` (the same shape everywhere) into
    ``[R, ...]``, in rank order."""
    if get_world_size() == 1:
        return part.unsqueeze(0)
    device = _comm_device()
    gathered = [torch.empty_like(part, device=device)
                for _ in range(get_world_size())]
    dist.all_gather(gathered, part.to(device))
    return torch.stack(gathered).to(part.device)


def mean_over_ranks(value: Tensor) -> Tensor:
    r"""The mean of a tensor over the ranks (a detached copy)."""
    value = value.detach().clone()
    if get_world_size() == 1:
        return value
    device = value.device
    value = value.to(_comm_device())
    dist.all_reduce(value)
    return (value / get_world_size()).to(device)


def broadcast_parameters(module: torch.nn.Module) -> None:
    r"""Gives every rank rank 0's parameters and buffers (as DDP does when
    it wraps a model)."""
    if get_world_size() == 1:
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        copy = tensor.detach().to(_comm_device())
        dist.broadcast(copy, src=0)
        tensor.data.copy_(copy)


def average_gradients(module: torch.nn.Module) -> None:
    r"""Replaces each parameter's gradient by its mean over the ranks,
    :math:`\bar g = \frac{1}{R} \sum_r g_r` (DDP's all-reduce after the
    backward pass; parameters without a gradient count as zero)."""
    if get_world_size() == 1:
        return
    for parameter in module.parameters():
        if not parameter.requires_grad:
            continue
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)
        parameter.grad.copy_(mean_over_ranks(parameter.grad))


def broadcast_object(value: T) -> T:
    r"""Rank 0's ``value`` (any picklable object), on every rank."""
    if get_world_size() == 1:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0,
                               device=_comm_device())
    return holder[0]


@contextlib.contextmanager
def alone() -> Iterator[None]:
    r"""Inside the block this process works as if it were the only one
    (world size 1, rank 0): no collectives."""
    global _alone
    previous, _alone = _alone, True
    try:
        yield
    finally:
        _alone = previous


def run_on_main(function: Callable[[], T]) -> T:
    r"""Runs ``function`` on rank 0 alone (see :func:`alone`) and returns its
    result, broadcast, on every rank; without a group, simply runs it."""
    if get_world_size() == 1:
        return function()
    result: Any = None
    if get_rank() == 0:
        with alone():
            result = function()
    return broadcast_object(result)
