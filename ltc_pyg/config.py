r"""Configuration: YAML in, frozen dataclasses out, unknown keys fail.

A run config names the method, the kNN graph it works on and the method's
own parameters (a frozen dataclass that each method declares)::

    method: knn-threshold
    seed: 0
    knn: {k: 80, method: flat}
    params: {threshold: 0.6}

Configs never run code. Library functions take plain arguments; only
:mod:`ltc_pyg.pipelines` unpacks configs.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from ltc_pyg.graph.knn import (
    KNN_METHODS,
    KNNMethod,
    default_num_probes,
    resolve_knn_method,
)

T = TypeVar('T')


@dataclass(frozen=True)
class KNNConfig:
    r"""How the kNN affinity graph is built.

    Args:
        k (int): Row length, the node itself included (as in
            ``faiss_k_<k>.npz``). (default: ``80``)
        method (str): ``'auto'`` (exact up to 200K nodes, ``'blocked'``
            above: :func:`~ltc_pyg.graph.knn.resolve_knn_method`), ``'flat'``
            (exact), ``'ivf'``, ``'hnsw'`` or ``'blocked'`` (see
            :func:`~ltc_pyg.graph.knn.blocked_search`).
            (default: ``'auto'``)
        num_lists (int, optional): IVF / blocked lists (:math:`4\sqrt{N}` if
            omitted).
        num_probes (int, optional): IVF / blocked lists visited per query
            (64 for IVF, 128 for blocked if omitted).
        ef_search (int): HNSW search breadth.
        hnsw_m (int): HNSW links per node.
    """
    k: int = 80
    method: KNNMethod = 'auto'
    num_lists: int | None = None
    num_probes: int | None = None
    ef_search: int = 256
    hnsw_m: int = 32

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f'knn.k must be at least 1 (got {self.k})')
        if self.method not in KNN_METHODS:
            raise ValueError(f"knn.method must be one of {KNN_METHODS} "
                             f"(got '{self.method}')")
        for name in ('num_lists', 'num_probes', 'ef_search', 'hnsw_m'):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f'knn.{name} must be at least 1 (got '
                                 f'{value})')

    def searched(self, num_nodes: int, num_processes: int = 1
                 ) -> KNNConfig:
        r"""These settings as the search of ``num_nodes`` nodes over
        ``num_processes`` runs them: ``'auto'`` replaced by the method it
        chooses and ``num_probes`` by that method's default when omitted."""
        method = resolve_knn_method(self.method, num_nodes, num_processes)
        return replace(self, method=method, num_probes=default_num_probes(
            method, self.num_probes))

    def search_kwargs(self) -> dict[str, Any]:
        r"""The arguments of :func:`~ltc_pyg.graph.knn.knn_search` besides
        ``k`` and ``method``."""
        return dict(num_lists=self.num_lists, num_probes=self.num_probes,
                    ef_search=self.ef_search, hnsw_m=self.hnsw_m)


@dataclass(frozen=True)
class RunConfig:
    r"""One run of one method.

    Args:
        method (str): Registered method name, e.g. ``'knn-threshold'``.
        knn (KNNConfig): The affinity graph.
        params (dict): The method's parameters; checked against the method's
            own dataclass when the method is built.
        seed (int): Seed of every random choice. (default: ``0``)
        device (str): ``'cpu'`` or ``'cuda'``. (default: ``'cpu'``)
    """
    method: str
    knn: KNNConfig = field(default_factory=KNNConfig)
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str = 'cpu'

    def __post_init__(self) -> None:
        check_seed(self.seed, 'seed')


def check_seed(seed: int, where: str) -> None:
    r"""Checks that ``seed`` suits every generator used (numpy and
    scikit-learn take :math:`[0, 2^{32} - 1]`)."""
    if not 0 <= seed < 2**32:
        raise ValueError(f'{where} must be in [0, 2^32 - 1] (got {seed})')


def _convert(annotation: Any, value: Any, where: str) -> Any:
    r"""Converts a YAML value to a field's declared type, recursing into
    nested dataclasses; ints are accepted for floats, lists for tuples."""
    origin = typing.get_origin(annotation)
    if is_dataclass(annotation) and isinstance(value, dict):
        return from_dict(annotation, value, where)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, where)
            except (TypeError, ValueError):
                continue
        raise TypeError(f'{where}: {value!r} is not a {annotation}')
    if origin is Literal:
        if value not in typing.get_args(annotation):
            raise ValueError(f'{where} must be one of '
                             f'{typing.get_args(annotation)} (got {value!r})')
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f'{where}: expected a list (got {value!r})')
        args = typing.get_args(annotation)
        item = args[0] if args else Any
        converted = [_convert(item, v, f'{where}[{i}]')
                     for i, v in enumerate(value)]
        return tuple(converted) if origin is tuple else converted
    if origin is dict or annotation is Any:
        return value
    if annotation is float and isinstance(value, int) and not isinstance(
            value, bool):
        return float(value)
    if annotation in (int, float, str, bool):
        if not isinstance(value, annotation) or (annotation is int and
                                                 isinstance(value, bool)):
            raise TypeError(f'{where}: expected {annotation.__name__} '
                            f'(got {value!r})')
    return value


def _field_default(spec: dataclasses.Field) -> Any:
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return spec.default


def from_dict(cls: type[T], raw: dict[str, Any], where: str = '',
              base: T | None = None) -> T:
    r"""Builds the frozen dataclass ``cls`` from a plain dict; unknown keys
    and values of the wrong type are errors that name the key.

    Keys left out keep the values of ``base`` (default: ``cls``'s
    defaults). A mapping given for a field whose default is itself a
    dataclass overrides only the keys it names: ``train: {epochs: 2}``
    keeps the method's own default optimiser and learning rate, not those
    of the schedule class."""
    if not isinstance(raw, dict):
        raise TypeError(f'{where or cls.__name__}: expected a mapping '
                        f'(got {raw!r})')
    known = {f.name: f for f in fields(cls)}
    unknown = set(raw) - set(known)
    if unknown:
        raise ValueError(f'Unknown keys for {where or cls.__name__}: '
                         f'{sorted(unknown)} (known: {sorted(known)})')
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in raw.items():
        path = f'{where}.{name}' if where else name
        default = (getattr(base, name) if base is not None
                   else _field_default(known[name]))
        if is_dataclass(default) and isinstance(value, dict):
            values[name] = from_dict(type(default), value, path, default)
        else:
            values[name] = _convert(hints[name], value, path)
    if base is not None:
        return dataclasses.replace(base, **values)
    return cls(**values)


def check_ranges(config: Any, positive: tuple[str, ...] = (),
                 fractions: tuple[str, ...] = ()) -> None:
    r"""Checks fields of a config dataclass (for its ``__post_init__``):
    each of ``positive`` (an int, or a tuple of ints such as layer sizes) is
    at least 1, each of ``fractions`` lies in :math:`[0, 1]`; ``None``
    passes. The error names the field and the value."""
    for name in positive:
        value = getattr(config, name)
        values = value if isinstance(value, tuple) else (value,)
        if any(v is not None and v < 1 for v in values):
            raise ValueError(f'{name} must be at least 1 (got {value!r})')
    for name in fractions:
        value = getattr(config, name)
        if value is not None and not 0 <= value <= 1:
            raise ValueError(f'{name} must lie in [0, 1] (got {value!r})')


def to_dict(config: Any) -> dict[str, Any]:
    r"""The plain-dict form of a config dataclass (for reports and
    checkpoints)."""
    return dataclasses.asdict(config)


def load_config(path: str | Path) -> RunConfig:
    r"""Reads a YAML run config (``yaml.safe_load``)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f'Config path {path} is a directory, not a '
                                f'file')
    if not path.is_file():
        raise FileNotFoundError(f'Config file not found: {path}')
    try:
        raw = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ValueError(f'{path} is not valid YAML: '
                         f'{str(error).splitlines()[0]}') from None
    if not isinstance(raw, dict) or 'method' not in raw:
        raise ValueError(f"{path}: a run config is a mapping with at least "
                         f"'method' (got {type(raw).__name__})")
    try:
        return from_dict(RunConfig, raw)
    except (TypeError, ValueError) as error:
        raise ValueError(f'{path}: {error}') from None
