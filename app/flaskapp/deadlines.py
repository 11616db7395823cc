"""Deadlines on the client's side of a request: receiving its body, taking its response.

gunicorn gives neither a time limit: a client that sends the headers of a POST and then
nothing, or that asks for a large response and never reads it, holds its connection (and with
``gthread`` a thread) for as long as it likes. Two deadlines bound them:

- ``receiving``: the body must arrive within APP_BODY_TIMEOUT_SECONDS in all, however it
  trickles in; over it, the caller answers 408 and the connection is not used again.
- ``ResponseDeadline``: the response must be taken by the client within
  APP_WRITE_TIMEOUT_SECONDS of the application returning it; over it, the connection is reset
  (closed with SO_LINGER 0, so the kernel drops what was left to send instead of keeping it).

How a deadline is enforced depends on the worker, recognised by the socket gunicorn puts in
``environ["gunicorn.socket"]`` (no socket, as under a test client: no deadline):

- gevent (the default): a ``gevent.Timeout`` in the request's greenlet, which is raised where
  the greenlet waits on the socket. For a write it raises EPIPE there, which gunicorn takes for
  a client gone and closes the connection without a traceback.
- gthread: a timeout on the socket would bound each ``recv`` and not the whole (a client
  sending one byte just before each timeout would never run out), so one watchdog thread per
  process shuts the socket down at the deadline instead: the read side for a body (the blocked
  read ends, the 408 can still be sent), both sides for a response (the blocked write fails
  with EPIPE).
"""

from __future__ import annotations

import errno
import heapq
import itertools
import logging
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

log = logging.getLogger(__name__)

StartResponse = Callable[..., object]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
_ABORT = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() resets the connection


class BodyTimeout(Exception):
    """The request body did not arrive within its deadline."""


def _in_gevent() -> bool:
    """Whether this process serves from gevent's loop (gunicorn's gevent worker patches the
    socket module before it loads the application)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("socket"))


class _GreenAlarm:
    """A gevent.Timeout raising ``exception`` in the current greenlet after ``seconds``."""

    def __init__(self, seconds: float, exception: BaseException) -> None:
        import gevent

        self._timeout = gevent.Timeout(seconds, exception)
        self._timeout.start()
        self._fired: bool | None = None

    @property
    def fired(self) -> bool:
        return not self._timeout.pending if self._fired is None else self._fired

    def cancel(self) -> None:
        if self._fired is None:
            self._fired = not self._timeout.pending
            self._timeout.close()


class _ThreadAlarm:
    """One entry of the watchdog: ``action`` runs at the deadline unless cancelled before."""

    def __init__(self, watchdog: _Watchdog, action: Callable[[], None]) -> None:
        self._watchdog = watchdog
        self._action = action
        self._cancelled = False
        self._fired = False

    @property
    def fired(self) -> bool:
        return self._fired

    def fire(self) -> None:
        """Called by the watchdog with its lock held, as ``cancel`` is: never both."""
        if not self._cancelled:
            self._fired = True
            with suppress(OSError):  # the socket closed meanwhile: nothing left to cut
                self._action()

    def cancel(self) -> None:
        with self._watchdog.lock:
            self._cancelled = True


class _Watchdog:
    """A thread that runs each alarm's action when its deadline passes (started on first use
    in each process, so one made before gunicorn forks is not relied on in a worker)."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self._due: list[tuple[float, int, _ThreadAlarm]] = []
        self._order = itertools.count()
        self._pid: int | None = None

    def arm(self, seconds: float, action: Callable[[], None]) -> _ThreadAlarm:
        alarm = _ThreadAlarm(self, action)
        with self.lock:
            if self._pid != os.getpid():
                self._pid, self._due = os.getpid(), []
                threading.Thread(target=self._run, name="flaskapp-deadlines", daemon=True).start()
            heapq.heappush(self._due, (time.monotonic() + seconds, next(self._order), alarm))
            if self._due[0][2] is alarm:  # due before the one the thread waits for
                self.lock.notify()
        return alarm

    def _run(self) -> None:
        with self.lock:
            while True:
                now = time.monotonic()
                while self._due and self._due[0][0] <= now:
                    heapq.heappop(self._due)[2].fire()
                self.lock.wait(self._due[0][0] - now if self._due else None)


_WATCHDOG = _Watchdog()


def _shutdown(sock: socket.socket, how: int) -> Callable[[], None]:
    return lambda: sock.shutdown(how)


@contextmanager
def receiving(environ: dict[str, Any], seconds: float) -> Iterator[None]:
    """Bound the block, which reads the request body, to ``seconds`` in all: past it,
    BodyTimeout is raised and the connection is not used for another request."""
    sock = environ.get("gunicorn.socket")
    if sock is None:
        yield
        return
    if _in_gevent():
        expired = BodyTimeout()
        green = _GreenAlarm(seconds, expired)
        try:
            yield
        except BodyTimeout as exc:
            if exc is expired:
                raise BodyTimeout from None
            raise
        finally:
            green.cancel()
        return
    alarm = _WATCHDOG.arm(seconds, _shutdown(sock, socket.SHUT_RD))
    try:
        yield
    except Exception:
        alarm.cancel()
        if alarm.fired:
            raise BodyTimeout from None
        raise
    alarm.cancel()
    if alarm.fired:
        raise BodyTimeout


class ResponseDeadline:
    """WSGI middleware: each response must be taken by the client within ``seconds``."""

    def __init__(self, app: WsgiApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        body = self.app(environ, start_response)
        sock = environ.get("gunicorn.socket")
        if sock is None:
            return body
        return _Sending(body, sock, self.seconds, environ)


class _Sending:
    """The response's iterable, timed from the first item the server asks for until it has
    written the last one; ``close`` (which servers call in any case) ends the deadline."""

    def __init__(
        self, body: Iterable[bytes], sock: socket.socket, seconds: float, environ: dict[str, Any]
    ) -> None:
        self._body = body
        self._sock = sock
        self._seconds = seconds
        self._environ = environ
        self._alarm: _GreenAlarm | _ThreadAlarm | None = None
        self._sent = False

    def __iter__(self) -> Iterator[bytes]:
        if _in_gevent():
            cut = BrokenPipeError(errno.EPIPE, "response not taken within its deadline")
            self._alarm = _GreenAlarm(self._seconds, cut)
        else:
            self._alarm = _WATCHDOG.arm(self._seconds, _shutdown(self._sock, socket.SHUT_RDWR))
        yield from self._body
        self._sent = True

    def close(self) -> None:
        alarm = self._alarm
        if alarm is not None:
            alarm.cancel()
            if alarm.fired and not self._sent:
                # gunicorn closes the socket next: without lingering, that is a reset.
                with suppress(OSError):
                    self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _ABORT)
                log.warning(
                    "response not taken by the client within %s s; connection reset",
                    self._seconds,
                    extra={
                        "method": self._environ.get("REQUEST_METHOD"),
                        "path": self._environ.get("PATH_INFO"),
                        "remote": self._environ.get("REMOTE_ADDR"),
                    },
                )
        close = getattr(self._body, "close", None)
        if close is not None:
            close()
