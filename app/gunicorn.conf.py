"""gunicorn settings for a container limited to 500m CPU and 500Mi memory.

Two gevent workers: each serves up to GUNICORN_WORKER_CONNECTIONS connections from one
thread, so a client that sends its request slowly holds a greenlet of a few kilobytes, not a
thread (no buffering proxy sits in front of the pod), and a few thousand stalled clients fit
beside the ordinary ones; the application's deadlines (flaskapp.deadlines) cut off a body or
a response that does not move. Requests mostly wait on the database, which the greenlets
overlap. SIGTERM stops accepting connections (those already queued are served) and lets
in-flight requests finish within graceful_timeout, which stays below Kubernetes' default 30 s
termination grace period.

The master also serves the pod's metrics on APP_METRICS_PORT and folds the sample files of
workers that exit (flaskapp.exporter).
"""

import functools
import logging
import os
import resource
import shutil
import signal
import socket
import sys

# Prometheus multiprocess mode: every worker writes its samples here, the master adds them up.
# Set before anything imports prometheus_client.
_metrics_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "/tmp/flaskapp-metrics")  # noqa: S108

from flaskapp.config import ConfigError, load_settings  # noqa: E402
from flaskapp.limits import failures_path  # noqa: E402
from gunicorn.arbiter import Arbiter  # noqa: E402
from gunicorn.glogging import Logger  # noqa: E402
from gunicorn.workers.base import Worker  # noqa: E402

try:
    _settings = load_settings()
except ConfigError as exc:
    sys.stderr.write(f"flaskapp: configuration error: {exc}\n")
    sys.exit(2)

_log = logging.getLogger("gunicorn.error")


def _open_files_limit() -> int:
    """Raise the soft limit on open files to the hard one (a container often starts at 1024):
    every connection is a file."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (OSError, ValueError):
            pass
    return soft


# Files a worker needs besides its connections: database pool, logs, metrics, slots.
_FILES_RESERVED = 64
_files = _open_files_limit()

bind = f"0.0.0.0:{_settings.port}"
workers = _settings.gunicorn_workers
worker_class = _settings.gunicorn_worker_class
worker_connections = min(_settings.gunicorn_worker_connections, _files - _FILES_RESERVED)
threads = _settings.gunicorn_threads  # gthread only
# Connections the kernel queues while every worker's pool is full: gunicorn's default, below
# the 4096 of net.core.somaxconn in a pod's network namespace.
backlog = 2048
# Kernel send buffer of each client connection (the kernel doubles it), instead of letting it
# grow to net.ipv4.tcp_wmem's 4 MiB: a client that never reads holds at most this much of the
# pod's memory, and a larger response waits on the client, where APP_WRITE_TIMEOUT_SECONDS
# cuts it off. A 1 MiB page still leaves in a few round trips.
SEND_BUFFER_BYTES = 64 * 1024
worker_tmp_dir = "/tmp"  # noqa: S108  (the only writable path in the container)
timeout = 30
graceful_timeout = 20
# Seconds an idle connection stays open; gevent workers also close a connection whose request
# line and headers have not all arrived within it, so slow clients cannot pile up.
keepalive = 5
# Recycle workers now and then so that slow memory growth cannot reach the limit. A worker
# about to be recycled asks for its successor first (pre_request), so the pod keeps its
# workers accepting connections while the old one finishes those it holds.
max_requests = 5000
max_requests_jitter = 500
# Bounded request sizes; the application enforces its own body limit.
limit_request_line = 4094
limit_request_fields = 50
# No control socket: it would be written under $HOME, and only /tmp is writable.
control_socket_disable = True
# The application writes one JSON access line per request itself, with the request id.
accesslog = None
# HTTPS on the public port when both files are given (the metrics port stays plain HTTP).
certfile = _settings.tls_cert_file
keyfile = _settings.tls_key_file


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

_exporter = None
# In a worker: whether it has asked for its successor (pre_request).
_successor_asked: set[int] = set()


def on_starting(server: Arbiter) -> None:
    """Start from an empty metrics directory and failure table, then serve the metrics."""
    global _exporter
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    os.makedirs(_metrics_dir, exist_ok=True)
    failures_path(_settings.port).unlink(missing_ok=True)
    if worker_connections < _settings.gunicorn_worker_connections:
        _log.warning(
            "worker_connections lowered to %s by the open-file limit %s",
            worker_connections,
            _files,
        )
    if _settings.metrics_port:
        from flaskapp import exporter

        try:
            _exporter = exporter.serve(_settings.metrics_port, _metrics_dir)
        except OSError as exc:
            sys.stderr.write(
                f"flaskapp: cannot serve metrics on APP_METRICS_PORT {_settings.metrics_port}: "
                f"{exc}\n"
            )
            sys.exit(1)
        _log.info("Serving metrics on port %s", _settings.metrics_port)


def when_ready(server: Arbiter) -> None:
    """Bound the send buffer of the public port's connections (they inherit the listener's)."""
    for listener in server.LISTENERS:
        listener.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)


def post_fork(server: Arbiter, worker: Worker) -> None:
    """A worker keeps nothing of the master's metrics server."""
    if _exporter is not None:
        _exporter.socket.close()


def _draining_stream_server() -> type:
    """gevent's StreamServer that, when it stops listening, first takes every connection
    already waiting in the listen backlog. The kernel completes a client's handshake before
    any worker accepts it, and when the last worker closes the listening socket (a shutdown,
    or workers busy at their CPU limit) it resets every connection still queued, requests
    already sent included: the client sees ECONNRESET, not an answer or a refusal it could
    retry. The connections taken here are served like the others before the worker exits;
    their handlers, which start after the listening socket has closed, read its address from
    a copy taken at start and find the handler gevent's close() drops."""
    from gevent.server import StreamServer

    class ListenerAddress:
        def __init__(self, sock: socket.socket) -> None:
            self.address = sock.getsockname()

        def getsockname(self) -> object:
            return self.address

    class DrainingStreamServer(StreamServer):
        def __init__(self, listener: socket.socket, handle: object, **kwargs: object) -> None:
            # gunicorn's handler: functools.partial(worker.handle, listener)
            if isinstance(handle, functools.partial) and handle.args == (listener,):
                handle = functools.partial(handle.func, ListenerAddress(listener))
            super().__init__(listener, handle=handle, **kwargs)
            # gevent's close() drops self.handle, but the connections taken from the backlog
            # run after it, and over TLS they call the handler only after their handshake.
            self.connection_handler = handle

        def close(self) -> None:
            if not self.closed:
                try:
                    # A full pool takes no more: its worker would wait for a free slot.
                    while not self.full() and (args := self.do_read()):
                        self.do_handle(*args)
                except OSError as exc:
                    _log.warning("Stopped taking queued connections: %s", exc)
            super().close()

        def wrap_socket_and_handle(self, client_socket: socket.socket, address: tuple) -> object:
            # A handshake that fails (a client that does not trust the CA, plain HTTP, a port
            # scan) is one line of the log, not a traceback from gevent's hub.
            try:
                ssl_socket = self.wrap_socket(client_socket, **self.ssl_args)
            except OSError as exc:
                _log.info("TLS handshake with %s failed: %s", address[0], exc)
                return None
            with ssl_socket:
                return self.connection_handler(ssl_socket, address)

    return DrainingStreamServer


def post_worker_init(worker: Worker) -> None:
    """A gevent worker takes the connections in the listen backlog before it stops listening
    (_draining_stream_server). With TLS, a client that opens a connection and never
    completes its handshake is cut off: gevent's accepted sockets start with the default
    timeout, under which it shakes hands (gunicorn makes them blocking afterwards)."""
    if worker_class == "gevent":
        from gunicorn.workers import ggevent

        ggevent.StreamServer = _draining_stream_server()
    if certfile:
        socket.setdefaulttimeout(keepalive)


def pre_request(worker: Worker, req: object) -> None:
    """Before its last request (max_requests) a worker asks the master for one more worker
    (SIGTTIN): gunicorn starts a replacement only once the old worker has exited, and that
    takes as long as the connections it holds (stalled ones up to their deadline), during
    which the pod would serve with one worker fewer, or none when all recycle together."""
    if worker.nr + 1 >= worker.max_requests and worker.pid not in _successor_asked:
        _successor_asked.add(worker.pid)
        worker.log.info("Asking the master for a successor before recycling")
        os.kill(worker.ppid, signal.SIGTTIN)


def child_exit(server: Arbiter, worker: Worker) -> None:
    """Fold the sample files of a worker that exited into the archives; the successor it
    asked for, if any, takes its place."""
    from flaskapp import exporter

    exporter.fold(worker.pid, _metrics_dir)
    if server.num_workers > workers:
        server.num_workers -= 1
