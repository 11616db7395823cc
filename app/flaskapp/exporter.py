"""The pod's metrics, served by gunicorn's master on APP_METRICS_PORT; the files behind them.

Workers write their samples to files in PROMETHEUS_MULTIPROC_DIR (prometheus_client's
multiprocess mode, flaskapp.metrics). gunicorn's master, from its configuration hooks:

- serves the scrape on APP_METRICS_PORT from a thread of its own, summing every worker's files,
  so metrics answer even while every worker is busy, and never on the public port;
- folds the files of each worker that exits (gunicorn recycles a worker after max_requests)
  into one archive file per metric type, summing as a scrape does, and deletes them: the
  directory holds the live workers' files and at most one archive per type, however many
  workers have come and gone.

A scrape and a fold exclude each other, so a scrape finds a dead worker's counts either in its
own files or in the archive, never in both or neither: no total ever goes down. This module
imports no metric of the service, so the master writes no sample file of its own.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

# Metric types whose samples add up across processes (the service defines no gauge).
SUMMED_TYPES = ("counter", "histogram", "summary")
ARCHIVE = "archive"

_LOCK = threading.Lock()


class _Exclusive(MultiProcessCollector):
    """The multiprocess collector, never reading while a fold rewrites the files, and passing
    over the file a worker has just created and not yet sized (it holds no sample yet; the
    stock collector fails the whole scrape on it)."""

    def collect(self) -> Iterable[Metric]:
        with _LOCK:
            files = [path for path in Path(self._path).glob("*.db") if path.stat().st_size >= 8]
            return list(self.merge([str(path) for path in files], accumulate=True))


def serve(port: int, directory: str) -> WSGIServer:
    """Serve the metrics of every file in ``directory`` on ``port`` (all addresses), from a
    daemon thread. Raises OSError when the port cannot be bound."""
    registry = CollectorRegistry()
    _Exclusive(registry, directory)
    server, _thread = start_http_server(port, registry=registry)
    return server


def archive_path(directory: str, kind: str) -> Path:
    return Path(directory) / f"{kind}_{ARCHIVE}.db"


def fold(pid: int, directory: str) -> list[str]:
    """Fold the sample files of the dead process ``pid`` into the archives and delete them.
    Returns the names of the files folded."""
    folded = []
    with _LOCK:
        for kind in SUMMED_TYPES:
            dead = Path(directory) / f"{kind}_{pid}.db"
            if not dead.exists():
                continue
            archive = archive_path(directory, kind)
            sources = [str(path) for path in (archive, dead) if path.exists()]
            merged = MultiProcessCollector.merge(sources, accumulate=False)
            # Written aside (a name the collector does not read), then swapped in at once.
            fresh = archive.with_name(archive.name + ".new")
            fresh.unlink(missing_ok=True)
            _write(fresh, merged)
            os.replace(fresh, archive)
            dead.unlink()
            folded.append(dead.name)
        mark_process_dead(pid, directory)  # the files of "live" gauges, should one appear
    return folded


def _write(path: Path, metrics: Iterable[Metric]) -> None:
    values = MmapedDict(str(path))
    try:
        for metric in metrics:
            for sample in metric.samples:
                key = json.dumps(
                    [metric.name, sample.name, sample.labels, metric.documentation],
                    sort_keys=True,
                )
                values.write_value(key, sample.value, 0.0)
    finally:
        values.close()
