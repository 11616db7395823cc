"""Prometheus metrics of the requests a worker answers, shared through multiprocess mode.

When PROMETHEUS_MULTIPROC_DIR is set (gunicorn.conf.py sets it), every worker writes its
samples to files in that directory, and gunicorn's master serves their sum on
APP_METRICS_PORT (flaskapp.exporter). Without it (a test client, flask run) the metrics stay
in the process's own registry.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import Counter, Histogram

_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _MULTIPROC_DIR:
    # gunicorn's on_starting makes it; a process started another way makes it here.
    os.makedirs(_MULTIPROC_DIR, exist_ok=True)

REQUESTS = Counter(
    "flaskapp_http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ("method", "route", "status"),
)
LATENCY = Histogram(
    "flaskapp_http_request_duration_seconds",
    "Time spent answering HTTP requests, by method and route template.",
    ("method", "route"),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DB_ERRORS = Counter(
    "flaskapp_database_unavailable_total",
    "Requests answered 503 because the database could not be reached.",
)
DISK_FULL = Counter(
    "flaskapp_database_full_total",
    "Requests answered 507 because the database's volume had no space left.",
)


# A method outside these is counted as "other": a client choosing methods cannot add series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# The labelled children of each (method, route, status), looked up once per process: routes
# are templates (or "unmatched"), methods the ones above, so the map stays small.
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe(method: str, route: str, status: int, seconds: float) -> None:
    if method not in _METHODS:
        method = "other"
    key = (method, route, status)
    children = _children.get(key)
    if children is None:
        children = (REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route))
        _children[key] = children
    children[0].inc()
    children[1].observe(seconds)
