r"""Wall time and peak memory of each pipeline stage, and the JSON report.

A report has the same shape for every method::

    {"method": ..., "params": {...}, "knn": {...}, "num_nodes": N,
     "num_clusters": C, "metrics": {...} or null,
     "stages": [{"name": ..., "seconds": ..., "peak_rss_gb": ...}, ...],
     "total_seconds": ..., "peak_rss_gb": ...}

``metrics`` uses the keys of ``ltc-pyg evaluate --json``; NaN is written
as JSON ``null``.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from ltc_pyg.data.io import atomic_write

logger = logging.getLogger(__name__)

_GB = 1024**3


@dataclass
class Stage:
    r"""One measured stage: wall seconds and the peak resident set size
    (RSS) of this process while it ran, in GiB."""
    name: str
    seconds: float
    peak_rss_gb: float


class _PeakRSS(threading.Thread):
    r"""Samples the process RSS every ``interval`` seconds until stopped."""
    def __init__(self, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return max(self.peak, self.process.memory_info().rss)


@dataclass
class StageTimer:
    r"""Records stages; use as ``with timer('kNN search'): ...``.

    Every stage is also logged at INFO with its time and peak memory.
    """
    stages: list[Stage] = field(default_factory=list)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        sampler = _PeakRSS()
        sampler.start()
        start = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - start
            peak = sampler.stop() / _GB
            self.stages.append(Stage(name, seconds, peak))
            logger.info('%s: %.2f s, peak RSS %.2f GB', name, seconds, peak)

    @property
    def total_seconds(self) -> float:
        return sum(stage.seconds for stage in self.stages)

    @property
    def peak_rss_gb(self) -> float:
        return max((stage.peak_rss_gb for stage in self.stages), default=0.0)

    def as_dict(self) -> dict[str, Any]:
        return {'stages': [asdict(stage) for stage in self.stages],
                'total_seconds': self.total_seconds,
                'peak_rss_gb': self.peak_rss_gb}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def dumps_json(value: Any) -> str:
    r"""JSON text with NaN/Inf written as ``null``."""
    return json.dumps(_json_safe(value), indent=2, allow_nan=False)


def write_json(path: str | Path, value: Any) -> None:
    r"""Writes :func:`dumps_json` of ``value`` atomically."""
    with atomic_write(path, 'w') as f:
        f.write(dumps_json(value) + '\n')


def format_table(rows: list[dict[str, Any]], columns: list[str],
                 float_format: str = '{:.4f}') -> str:
    r"""A plain-text table (Markdown pipe syntax) of ``rows``."""
    def cell(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return 'n/a'
        if isinstance(value, float):
            return float_format.format(value)
        return str(value)

    lines = ['| ' + ' | '.join(columns) + ' |',
             '|' + '|'.join('---' for _ in columns) + '|']
    lines += ['| ' + ' | '.join(cell(row.get(c)) for c in columns) + ' |'
              for row in rows]
    return '\n'.join(lines)
