"""gunicorn settings for a container limited to 500m CPU and 500Mi memory.

Two gevent workers: each serves up to GUNICORN_WORKER_CONNECTIONS connections from one
thread, so a client that sends its request slowly holds a few kilobytes, not a thread (no
buffering proxy sits in front of the pod). Requests mostly wait on the database, which the
greenlets overlap. SIGTERM stops accepting connections and lets in-flight requests finish
within graceful_timeout, which stays below Kubernetes' default 30 s termination grace period.
"""

import os
import shutil
import sys

# Prometheus multiprocess mode: every worker writes its samples here, /metrics adds them up.
# Set before anything imports prometheus_client.
_metrics_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "/tmp/flaskapp-metrics")  # noqa: S108

from flaskapp.config import ConfigError, load_settings  # noqa: E402
from gunicorn.glogging import Logger  # noqa: E402

try:
    _settings = load_settings()
except ConfigError as exc:
    sys.stderr.write(f"flaskapp: configuration error: {exc}\n")
    sys.exit(2)

bind = f"0.0.0.0:{_settings.port}"
workers = _settings.gunicorn_workers
worker_class = _settings.gunicorn_worker_class
worker_connections = _settings.gunicorn_worker_connections
threads = _settings.gunicorn_threads  # gthread only
worker_tmp_dir = "/tmp"  # noqa: S108  (the only writable path in the container)
timeout = 30
graceful_timeout = 20
# Seconds an idle connection stays open; gevent workers also close a connection whose request
# line and headers have not all arrived within it, so slow clients cannot pile up.
keepalive = 5
# Recycle workers now and then so that slow memory growth cannot reach the limit.
max_requests = 5000
max_requests_jitter = 500
# Bounded request sizes; the application enforces its own body limit.
limit_request_line = 4094
limit_request_fields = 50
# No control socket: it would be written under $HOME, and only /tmp is writable.
control_socket_disable = True
# The application writes one JSON access line per request itself, with the request id.
accesslog = None


class _ErrorLogOnly(Logger):
    """gunicorn's logger without its access log, whose fields it would otherwise format for
    every request only to drop them (logconfig_dict turns that work on)."""

    def access(self, resp: object, req: object, environ: object, request_time: object) -> None:
        return


logger_class = _ErrorLogOnly
loglevel = _settings.log_level.lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "flaskapp.logs.JsonFormatter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        "gunicorn.error": {
            "level": _settings.log_level,
            "handlers": ["stderr"],
            "propagate": False,
        },
        "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
    },
    "root": {"level": _settings.log_level, "handlers": ["stderr"]},
}


def on_starting(server: object) -> None:
    """Start with an empty metrics directory so old samples are not reported."""
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    os.makedirs(_metrics_dir, exist_ok=True)


def child_exit(server: object, worker: object) -> None:
    """Drop the live-sample files of a worker that exited."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
