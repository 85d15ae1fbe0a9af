r"""The interface every clustering method implements, and the registry that
the CLI and :mod:`ltc_pyg.pipelines.run` look methods up in.

A method is a :class:`ClusteringMethod` subclass with

* ``name``: its CLI name (``'knn-threshold'``, ``'gcn-v'``, ...);
* ``Params``: a frozen dataclass of its parameters (the ``params:`` section
  of a YAML config; unknown keys fail);
* :meth:`predict`: the affinity graph in, one label per node out;
* for learned methods (``trainable = True``) :meth:`fit`, and
  :meth:`state_dict` / :meth:`load_state_dict` for checkpoints: subclass
  :class:`~ltc_pyg.pipelines.training.LearnedMethod`, which provides them.

Adding a method is two steps: write the subclass in its own module under
:mod:`ltc_pyg.pipelines`, and add one line to :data:`METHODS`. Modules are
imported on first use, so an optional dependency of one method never breaks
the others.

The graph a method receives is the output of
:func:`ltc_pyg.pipelines.run.build_graph`: a :class:`~torch_geometric.data.Data`
with ``x`` (L2-normalised features ``[N, D]``), ``knn_neighbor`` and
``knn_similarity`` (``[N, k]``, itself first), and ``y`` (``[N]``, ``-1`` =
unknown) when labels are known. Methods build the edges they need from the
dense kNN arrays with :mod:`ltc_pyg.graph.transforms`.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch_geometric.data import Data

from ltc_pyg.config import KNNConfig, from_dict, to_dict
from ltc_pyg.pipelines.report import StageTimer

# name -> 'module:Class'; imported lazily by get_method().
METHODS: dict[str, str] = {
    'knn-threshold': 'ltc_pyg.pipelines.knn_threshold:KNNThreshold',
    'lgcn': 'ltc_pyg.pipelines.lgcn:LGCNMethod',
    'gcn-v': 'ltc_pyg.pipelines.gcn_v:GCNVMethod',
    'gcn-v+e': 'ltc_pyg.pipelines.gcn_v:GCNVEMethod',
    'gcn-e': 'ltc_pyg.pipelines.gcn_v:GCNVEMethod',
    'gcn-d': 'ltc_pyg.pipelines.gcn_d:GCNDMethod',
    'gcn-d+s': 'ltc_pyg.pipelines.gcn_d:GCNDSMethod',
    'gcn-s': 'ltc_pyg.pipelines.gcn_d:GCNDSMethod',
    'kmeans': 'ltc_pyg.pipelines.baselines:KMeansMethod',
    'minibatch-kmeans': 'ltc_pyg.pipelines.baselines:MiniBatchKMeansMethod',
    'spectral': 'ltc_pyg.pipelines.baselines:SpectralMethod',
    'meanshift': 'ltc_pyg.pipelines.baselines:MeanShiftMethod',
    'knn-dbscan': 'ltc_pyg.pipelines.baselines:KNNDBSCANMethod',
    'fast-hac': 'ltc_pyg.pipelines.baselines:FastHACMethod',
    'aro': 'ltc_pyg.pipelines.baselines:AROMethod',
    'chinese-whispers': 'ltc_pyg.pipelines.baselines:ChineseWhispersMethod',
    'cdp': 'ltc_pyg.pipelines.baselines:CDPMethod',
    'infomap': 'ltc_pyg.pipelines.baselines:InfomapMethod',
    'fc-es': 'ltc_pyg.pipelines.edges:FCESMethod',
    'learned-edges': 'ltc_pyg.pipelines.edges:LearnedEdgesMethod',
}


#: Parameter names that threshold similarities, looked for in this order.
THRESHOLD_PARAMS: tuple[str, ...] = ('threshold', 'tau')


@dataclass(frozen=True)
class NoParams:
    r"""Parameters of a method that has none."""


def check_device(device: str) -> None:
    r"""Checks a torch device string (``'cpu'``, ``'cuda'``, ``'cuda:1'``,
    ...), so that a typo such as ``'gpu'`` fails before any work."""
    try:
        torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"Unknown device {device!r} (expected 'cpu', "
                         f"'cuda' or 'cuda:<index>')") from None


class ClusteringMethod(ABC):
    r"""Base class of every clustering method.

    Args:
        params (Params or dict, optional): The method's parameters; a dict is
            checked against :attr:`Params`. (default: the defaults)
        device (str, optional): Torch device. (default: ``'cpu'``)
        seed (int, optional): Seed of every random choice. (default: ``0``)
        progress_bar (bool, optional): Show progress bars; by default shown
            for large inputs.

    Attributes:
        trained_knn (KNNConfig or None): The kNN settings of the graph a
            learned method was trained on (set by training and by loading
            one of our checkpoints); :func:`~ltc_pyg.pipelines.run.cluster`
            holds its graphs to them.
        trained_threshold (float or None): The value of the threshold
            parameter chosen on the labelled training split
            (:func:`~ltc_pyg.pipelines.run.train`, when the parameter is
            left ``None``); :attr:`threshold` uses it.
    """
    name: ClassVar[str]
    Params: ClassVar[type] = NoParams
    trainable: ClassVar[bool] = False
    #: Whether :meth:`predict` splits its work over the ranks of a
    #: ``torchrun`` group (every rank calls it); otherwise rank 0 runs it
    #: alone (:func:`~ltc_pyg.distributed.run_on_main`).
    shards_inference: ClassVar[bool] = False
    #: Whether :meth:`predict` reads ``graph.x``. Methods that cluster the
    #: kNN rows alone set it to :obj:`False`: given a kNN file, the CLI then
    #: neither reads nor holds the features (2 KB per node at ``D = 256``,
    #: counting the file's mapped pages).
    reads_features: ClassVar[bool] = True

    def __init__(self, params: Any = None, device: str = 'cpu', seed: int = 0,
                 progress_bar: bool | None = None) -> None:
        if params is None:
            params = self.Params()
        elif isinstance(params, dict):
            params = from_dict(self.Params, params, f'{self.name} params')
        elif not isinstance(params, self.Params):
            raise TypeError(f'{self.name} expects {self.Params.__name__} '
                            f'(got {type(params).__name__})')
        check_device(device)
        self.params = params
        self.trained_knn: KNNConfig | None = None
        self.trained_threshold: float | None = None
        self.device = device
        self.seed = seed
        self.progress_bar = progress_bar

    def fit(self, graph: Data, timer: StageTimer | None = None,
            save: Callable[[], None] | None = None) -> None:
        r"""Trains on a graph whose ``y`` holds the true labels.

        Args:
            graph (Data): The training graph.
            timer (StageTimer, optional): Records the stages.
            save (callable, optional): Writes a checkpoint of the current
                state; long trainings call it periodically so that they can
                be resumed (:meth:`state_dict` holds the optimiser and step).
        """
        raise TypeError(f"'{self.name}' is not trained; run it with "
                        f"'ltc-pyg cluster --method {self.name}'")

    @abstractmethod
    def predict(self, graph: Data,
                timer: StageTimer | None = None) -> np.ndarray:
        r"""Clusters the graph's nodes.

        Returns:
            np.ndarray: int64 ``[N]`` labels ``0..C-1`` (every node gets one;
            outliers are singletons).
        """

    @classmethod
    def upgrade_params(cls, raw: dict[str, Any]) -> dict[str, Any]:
        r"""The parameters stored in an older checkpoint of this method, in
        today's names (unchanged unless a method renamed one)."""
        return raw

    def state_dict(self) -> dict[str, Any]:
        r"""Everything a checkpoint needs to restore (and resume) the method;
        only trainable methods have one."""
        raise TypeError(f"'{self.name}' has no trained state")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        r"""Restores :meth:`state_dict` (or a converted original checkpoint)."""
        raise TypeError(f"'{self.name}' has no trained state")

    def load_original_state_dict(self, state_dict: dict[str, Any]) -> None:
        r"""Loads the ``state_dict`` of a checkpoint released by the original
        learn-to-cluster project (mmcv format ``{'meta', 'state_dict'}``),
        converting its key names and weight layouts."""
        raise TypeError(f"'{self.name}' cannot read checkpoints of the "
                        f"original project")

    @property
    def threshold_name(self) -> str | None:
        r"""The parameter that thresholds similarities, the one threshold
        sweeps vary: the first of :data:`THRESHOLD_PARAMS` in
        :attr:`Params`, or :obj:`None`. Methods where another parameter
        applies override this."""
        names = {field.name for field in dataclasses.fields(self.params)}
        return next((name for name in THRESHOLD_PARAMS if name in names),
                    None)

    @property
    def threshold(self) -> float:
        r"""The threshold parameter's value: as given, else the one chosen
        on the training split (:attr:`trained_threshold`)."""
        name = self.threshold_name
        value = None if name is None else getattr(self.params, name)
        if value is None:
            value = self.trained_threshold
        if value is None:
            raise ValueError(f"'{self.name}' has no {name or 'threshold'}: "
                             f'give one (--threshold) or train it on '
                             f'labelled data, which chooses it')
        return value

    def check_ready(self) -> None:
        r"""Raises :class:`ValueError` when the method cannot cluster as
        configured (no trained model, no threshold), before any work: the
        CLI calls it ahead of reading the graph, :func:`~ltc_pyg.pipelines.
        run.cluster` ahead of predicting. Methods that need nothing from
        training (the default) are always ready."""
        return None

    def describe(self) -> dict[str, Any]:
        r"""The parameters as a plain dict, for reports; a threshold chosen
        on the training split as ``<name>_used``."""
        described = to_dict(self.params)
        name = self.threshold_name
        if (self.trained_threshold is not None
                and described.get(name) is None):
            described[f'{name}_used'] = self.trained_threshold
        return described

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in self.describe().items())
        return f'{self.__class__.__name__}({args})'


def get_method(name: str) -> type[ClusteringMethod]:
    r"""The class registered under ``name``; an unknown name fails with the
    closest registered ones."""
    if name not in METHODS:
        close = difflib.get_close_matches(name, METHODS, n=2)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close \
            else ''
        raise ValueError(f"Unknown method '{name}'{hint} (available: "
                         f"{', '.join(sorted(METHODS))})")
    module_name, class_name = METHODS[name].split(':')
    return getattr(importlib.import_module(module_name), class_name)


def parameter_help(params: type) -> dict[str, str]:
    r"""The first sentence of each parameter's description in the
    ``Args:`` section of a ``Params`` docstring, by name."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in (params.__doc__ or '').splitlines():
        match = re.match(r'\s*(\w+) \([^)]*\):\s*(.*)', line)
        if match and match.group(1) in {f.name for f in
                                        dataclasses.fields(params)}:
            current = found.setdefault(match.group(1), [match.group(2)])
        elif current is not None and line.strip():
            current.append(line.strip())
        else:
            current = None
    return {name: first_sentence(' '.join(words))
            for name, words in found.items()}


#: The TeX of parameter docstrings as a terminal shows it.
TEX_AS_TEXT = {r'\geq': '>=', r'\theta': 'θ', r'\log': 'log'}


def first_sentence(text: str) -> str:
    r"""The first sentence of docstring text, markup removed, for the
    terminal."""
    # A role broken across lines (:func:`~a.b.<newline>c`) joins up again.
    text = re.sub(r':\w+:`[^`]*`', lambda m: m.group(0).replace(' ', ''),
                  ' '.join(text.split()))
    text = re.split(r'(?<=\.)\s(?=[A-Z(])', text, maxsplit=1)[0]
    text = re.sub(r':\w+:`~?(?:[\w.]*\.)?([^`]+)`', r'\1', text)
    for tex, plain in TEX_AS_TEXT.items():
        text = text.replace(tex, plain)
    return re.sub(r'\^\{([^}]*)\}', r'^\1', text).replace('``', '')


def build_method(name: str, params: Any = None, **kwargs: Any
                 ) -> ClusteringMethod:
    r"""Instantiates the method registered under ``name``."""
    return get_method(name)(params, **kwargs)
