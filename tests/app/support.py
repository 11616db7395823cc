"""Real servers for the service's tests and benchmark: FerretDB and gunicorn processes."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import multiprocessing
import os
import random
import resource
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote_plus

import requests
from bson import ObjectId
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pymongo import MongoClient
from pymongo.errors import PyMongoError
from requests.auth import AuthBase

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "app"
VENV_BIN = Path(sys.executable).parent
ADMIN_USER = "root"
ADMIN_PASSWORD = "root-test-password"
ADMIN_DB = "admin"
# Lines the session prints at its end (image size, ...), whatever pytest captured.
SUMMARY: list[str] = []
# The API keys of the tests' services, new for every session, as `make setup` makes them.
WRITE_KEY = secrets.token_urlsafe(32)
READ_KEY = secrets.token_urlsafe(32)
KEYS = {"writer": ("write", WRITE_KEY), "reader": ("read", READ_KEY)}


def api_keys_json(keys: dict[str, tuple[str, str]] = KEYS) -> str:
    """APP_API_KEYS for ``keys`` ({name: (scope, key)}): names, scopes and hashes only."""
    return json.dumps(
        [
            {"name": name, "scope": scope, "sha256": hashlib.sha256(key.encode()).hexdigest()}
            for name, (scope, key) in keys.items()
        ]
    )


class Bearer(AuthBase):
    """requests' ``auth=``: sends ``Authorization: Bearer <key>``."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.key}"
        return request


WRITER = Bearer(WRITE_KEY)
READER = Bearer(READ_KEY)


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (32768 where it cannot be read)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_PORT_FLOOR = 10000
_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on, below the kernel's ephemeral range and not handed out before
    in this run. bind(0) and outgoing connections take their ports from that range, so none of
    them can take this port between this check and the server's own bind."""
    low = _ephemeral_low()
    for _ in range(500):
        port = random.randrange(_PORT_FLOOR, low)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {_PORT_FLOOR}-{low - 1} after 500 tries")


def ferretdb_binary() -> str:
    """Build (once, cached by version) and return the FerretDB binary."""
    out = subprocess.run(
        [str(REPO / "scripts" / "ferretdb.sh"), "build"],
        check=True,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    return out.stdout.strip().splitlines()[-1]


def start_process(
    name: str,
    command: list[str],
    log_path: Path,
    ready: Callable[[], bool],
    timeout: float,
    **popen: Any,
) -> subprocess.Popen[bytes]:
    """Start a server in its own session, logging to log_path, and wait until ready() holds.

    A server that exits, or does not become ready in time, is killed and reported with the
    end of its log, so a failed start never leaves a process behind."""
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **popen
        )
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited: {log_path.read_text()[-3000:]}")
        if ready():
            return proc
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
            raise RuntimeError(
                f"{name} did not answer in {timeout} s: {log_path.read_text()[-3000:]}"
            )
        time.sleep(0.1)


def mongo_uri(host: str, port: int, user: str, password: str, source: str) -> str:
    return f"mongodb://{quote_plus(user)}:{quote_plus(password)}@{host}:{port}/?authSource={source}"


class _Server:
    """A server process used as a context manager: started on entry, stopped on exit."""

    def start(self, timeout: float = 30) -> None:
        raise NotImplementedError

    def stop(self) -> object:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class FerretDB(_Server):
    """A FerretDB process with the SQLite backend, new authentication and a setup user."""

    def __init__(
        self,
        binary: str,
        data_dir: Path,
        port: int | None = None,
        listen_host: str = "127.0.0.1",
        log_path: Path | None = None,
    ) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.port = port or free_port()
        self.listen_host = listen_host
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = log_path or data_dir.parent / f"{data_dir.name}-ferretdb.log"

    @property
    def admin_uri(self) -> str:
        return mongo_uri("127.0.0.1", self.port, ADMIN_USER, ADMIN_PASSWORD, ADMIN_DB)

    def start(self, timeout: float = 30) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = start_process(
            "FerretDB",
            [
                self.binary,
                "--handler=sqlite",
                f"--sqlite-url=file:{self.data_dir}/",
                f"--state-dir={self.data_dir}",
                f"--listen-addr={self.listen_host}:{self.port}",
                "--debug-addr=-",
                "--telemetry=disable",
                "--log-level=WARN",
                "--test-enable-new-auth",
                f"--setup-username={ADMIN_USER}",
                f"--setup-password={ADMIN_PASSWORD}",
                f"--setup-database={ADMIN_DB}",
            ],
            self.log_path,
            self._answers,
            timeout,
        )

    def _answers(self) -> bool:
        try:
            with MongoClient(self.admin_uri, serverSelectionTimeoutMS=500) as client:
                client.admin.command("ping")
        except PyMongoError:
            return False
        return True

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop the server: SIGTERM lets it shut down cleanly, SIGKILL is a crash."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None


class Gunicorn(_Server):
    """The service under its production gunicorn configuration, on a free port, with the
    test keys (KEYS) and its metrics on a free port of their own; ``args`` are gunicorn
    command-line options that override the configuration file (``--max-requests 20``)."""

    def __init__(
        self,
        env: dict[str, str],
        workdir: Path,
        workers: int = 2,
        args: tuple[str, ...] = (),
        ca_file: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.log_path = workdir / f"gunicorn-{self.port}.log"
        self.metrics_dir = workdir / f"metrics-{self.port}"
        self.args = args
        # The CA that signed APP_TLS_CERT_FILE, when the service serves HTTPS.
        self.ca_file = ca_file
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("MONGODB_", "GUNICORN_", "APP_"))
            },
            "PYTHONPATH": str(APP_DIR),
            "PORT": str(self.port),
            "GUNICORN_WORKERS": str(workers),
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
            "APP_API_KEYS": api_keys_json(),
            "APP_METRICS_PORT": str(free_port()),
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.env.get("APP_TLS_CERT_FILE") else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.env['APP_METRICS_PORT']}/metrics"

    def command(self) -> list[str]:
        return [
            str(VENV_BIN / "gunicorn"),
            "--config",
            str(APP_DIR / "gunicorn.conf.py"),
            *self.args,
            "flaskapp.wsgi:app",
        ]

    def run_to_exit(self, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run the server in the foreground, for a configuration that must stop it."""
        return subprocess.run(
            self.command(),
            env=self.env,
            cwd=APP_DIR,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, timeout: float = 30) -> None:
        self.proc = start_process(
            "gunicorn",
            self.command(),
            self.log_path,
            self._answers,
            timeout,
            env=self.env,
            cwd=APP_DIR,
        )

    def _answers(self) -> bool:
        verify: bool | str = str(self.ca_file) if self.ca_file else True
        try:
            return requests.get(f"{self.url}/healthz", timeout=1, verify=verify).status_code == 200
        except requests.RequestException:
            return False

    def workers(self) -> list[int]:
        """The pids of the master's worker processes."""
        assert self.proc is not None
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True
        )
        return [int(pid) for pid in out.stdout.split()]

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        code = self.proc.poll()
        if code is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                code = self.proc.wait(timeout=5)
        self.proc = None
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        return code

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


class _Background:
    """Work that runs in a thread of its own from entry to exit (``_run`` until ``_stop``)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


class SlowClients(_Background):
    """``count`` connections that each send a request line and then one header line every
    ``interval`` seconds, never finishing the request; one that the server closes is opened
    again, so ``count`` stay open. Runs in a background thread until stopped."""

    def __init__(self, port: int, count: int, interval: float = 2.0) -> None:
        super().__init__()
        self.port = port
        self.count = count
        self.interval = interval
        self.opened = 0
        self.closed_by_server = 0

    def _open(self) -> socket.socket | None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: slow\r\n")
        except OSError:
            return None
        sock.setblocking(False)
        self.opened += 1
        return sock

    def _run(self) -> None:
        socks = [s for s in (self._open() for _ in range(self.count)) if s is not None]
        while not self._stop.wait(self.interval):
            alive = []
            for sock in socks:
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                    if sock.recv(1, socket.MSG_PEEK) == b"":
                        raise ConnectionResetError
                except BlockingIOError:
                    alive.append(sock)  # nothing to read: the server still waits for us
                    continue
                except OSError:
                    pass
                self.closed_by_server += 1
                sock.close()
            socks = alive + [s for s in (self._open() for _ in socks[len(alive) :]) if s]
        for sock in socks:
            sock.close()


# What a stalled connection sends: the headers of a POST announcing a 64 KiB body and one
# byte of it, or the request of a large listing that it will never read.
def stalled_body_request(key: str) -> bytes:
    return (
        b"POST /data HTTP/1.1\r\nHost: stalled\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\nContent-Length: 65536\r\n\r\n{"
    )


def unread_listing_request(key: str, cursor: str) -> bytes:
    return (
        b"GET /data?limit=500&cursor=" + cursor.encode() + b" HTTP/1.1\r\nHost: stalled\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\n\r\n"
    )


# Records of a page of about 1 MiB: 20 of 60 KB as JSON (10,000 control characters each).
PAGE_RECORDS = 20


def seed_page(url: str) -> str:
    """Store PAGE_RECORDS large records through the service; returns a cursor whose page
    starts with them, whatever is written after them."""
    if str(APP_DIR) not in sys.path:
        sys.path.insert(0, str(APP_DIR))
    from flaskapp.records import encode_cursor

    for _ in range(PAGE_RECORDS):
        record = {"pad": "\x01" * 10_000}
        created = requests.post(f"{url}/data", json=record, auth=WRITER, timeout=30)
        assert created.status_code == 201, created.text
    newest = requests.get(f"{url}/data/{created.json()['id']}", auth=READER, timeout=30).json()
    moment = datetime.fromisoformat(newest["created_at"].replace("Z", "+00:00"))
    return encode_cursor(moment, ObjectId("f" * 24))


@dataclass
class Ending:
    """How the server ended one stalled connection: the status it answered (None: nothing
    seen), "closed" or "reset", the seconds from the request to that end, and from the
    request to the first byte of the answer (None: no answer)."""

    status: int | None
    how: str
    seconds: float
    answered: float | None

    @property
    def held(self) -> float:
        """How long a deadline held the connection: for a body, from the request (its
        deadline starts when the service starts reading it) to the 408; for a response,
        from its first byte to the reset."""
        if self.status == 408 or self.answered is None:
            return self.seconds
        return self.seconds - self.answered


@dataclass
class _Open:
    sock: socket.socket
    sent_at: float
    status: int | None = None
    answered: float | None = None


class _StallLoop:
    """The connections of Stallers, driven from one poll loop in a process of their own."""

    def __init__(self, port: int, count: int, request: bytes, reads: bool, reopen: bool) -> None:
        self.port = port
        self.count = count
        self.request = request
        self.reads = reads
        self.reopen = reopen
        self.opened = 0
        self.failed_to_open = 0
        self.endings: list[Ending] = []
        self._poller = select.poll()
        self._open: dict[int, _Open] = {}

    def _connect(self) -> None:
        sock = socket.socket()
        if not self.reads:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", self.port))
            sock.sendall(self.request)
        except OSError:
            self.failed_to_open += 1
            sock.close()
            return
        sock.setblocking(False)
        self.opened += 1
        self._open[sock.fileno()] = _Open(sock, time.monotonic())
        self._poller.register(sock, select.POLLIN | select.POLLRDHUP)

    def _event(self, fd: int, events: int) -> None:
        conn = self._open[fd]
        if events & select.POLLIN and conn.answered is None:
            conn.answered = time.monotonic() - conn.sent_at
            conn.status = _status_of(conn.sock, peek=not self.reads)
            if not self.reads:
                self._poller.modify(fd, select.POLLRDHUP)  # the answer stays unread
                return
        if self.reads and events & select.POLLIN and not _drain(conn.sock):
            events |= select.POLLRDHUP
        if not events & (select.POLLERR | select.POLLHUP | select.POLLRDHUP):
            return
        error = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        how = "reset" if events & select.POLLERR or error else "closed"
        elapsed = time.monotonic() - conn.sent_at
        self.endings.append(Ending(conn.status, how, elapsed, conn.answered))
        self._poller.unregister(fd)
        del self._open[fd]
        conn.sock.close()
        if self.reopen:
            self._connect()

    def run(self, control: Connection) -> None:
        """Open every connection, say so on ``control``, keep them open until ``control``
        says stop, then send the figures back."""
        for _ in range(self.count):
            self._connect()
        control.send("open")
        self._poller.register(control.fileno(), select.POLLIN)
        ended = False
        while True:
            if not self._open and not ended:
                control.send("ended")  # every connection ended, none to open again
                ended = True
            for fd, events in self._poller.poll(100):
                if fd == control.fileno():
                    for conn in self._open.values():
                        conn.sock.close()
                    control.send((self.opened, self.failed_to_open, self.endings))
                    return
                self._event(fd, events)


def _stall(
    port: int, count: int, request: bytes, reads: bool, reopen: bool, control: Connection
) -> None:
    _StallLoop(port, count, request, reads, reopen).run(control)


def raise_open_files(needed: int) -> None:
    """Raise this process's open-file limit to ``needed`` (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < needed:
        raise RuntimeError(f"{needed} open files are needed; the hard limit is {hard}")


class Stallers:
    """``count`` connections that send ``request`` and then neither send nor read anything
    more; with ``reopen``, one that the server ends is opened again, so ``count`` stay open.
    With ``reads=False`` they take a 4 KiB receive buffer and never read the answer (its
    status line is peeked); otherwise they read what the server answers. They run in a
    process of their own (thousands of them would slow down any client sharing their
    interpreter) from entry, once all are open, to exit; ``endings`` then holds every
    connection the server ended."""

    def __init__(
        self, port: int, count: int, request: bytes, reads: bool = True, reopen: bool = True
    ) -> None:
        self.count = count
        self.opened = 0
        self.failed_to_open = 0
        self.endings: list[Ending] = []
        self._control, child = multiprocessing.get_context("spawn").Pipe()
        self._process = multiprocessing.get_context("spawn").Process(
            target=_stall, args=(port, count, request, reads, reopen, child), daemon=True
        )

    def __enter__(self) -> Self:
        self._process.start()
        if not self._control.poll(180):
            self._process.kill()
            raise RuntimeError(f"{self.count} stalled connections did not open in 180 s")
        assert self._control.recv() == "open"
        return self

    def wait_ended(self, timeout: float) -> bool:
        """Wait until the server has ended every connection (without ``reopen``)."""
        return self._control.poll(timeout) and self._control.recv() == "ended"

    def __exit__(self, *exc_info: object) -> None:
        self._control.send("stop")
        while self._control.poll(60):
            message = self._control.recv()
            if message != "ended":
                self.opened, self.failed_to_open, self.endings = message
                break
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()

    def summary(self, deadline: float) -> dict[str, object]:
        """Figures of the connections the server ended: by answer and end, and how long the
        deadline held those it cut off (Ending.held)."""
        kinds: dict[str, int] = {}
        for ending in self.endings:
            name = f"{ending.status or 'nothing'} {ending.how}"
            kinds[name] = kinds.get(name, 0) + 1
        cut = sorted(e.held for e in self.endings if is_cut(e))
        return {
            "connections": self.count,
            "opened": self.opened,
            "failed_to_open": self.failed_to_open,
            "ended_by_server": len(self.endings),
            "endings": kinds,
            "cut": len(cut),
            "cut_held_s": _spread(cut),
            "deadline_s": deadline,
        }


def is_cut(ending: Ending) -> bool:
    """Cut off at a deadline: a 408 for a body, a reset for a response never read."""
    return ending.status == 408 or (ending.status == 200 and ending.how == "reset")


def _status_of(sock: socket.socket, peek: bool) -> int | None:
    try:
        head = sock.recv(12, socket.MSG_PEEK if peek else 0)
    except OSError:
        return None
    parts = head.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def _drain(sock: socket.socket) -> bool:
    """Read what is there; False once the server has closed."""
    try:
        return sock.recv(65536) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "min": round(values[0], 2),
        "p50": round(values[len(values) // 2], 2),
        "p99": round(values[int(len(values) * 0.99)], 2),
        "max": round(values[-1], 2),
    }


class OrdinaryClient(_Background):
    """One client beside the stalled ones, sending ordinary requests one after another, each
    on a new connection with a 10 s timeout, until stopped: POST /data, GET of that record,
    GET /healthz, GET /. Counts the answers that were what they should be."""

    def __init__(self, url: str, verify: bool | str = True) -> None:
        super().__init__()
        self.url = url
        self.verify = verify
        self.sent = 0
        self.ok = 0
        self.failures: list[str] = []
        self.latencies: list[float] = []

    def _call(
        self, method: str, path: str, expected: int, **kwargs: Any
    ) -> requests.Response | None:
        self.sent += 1
        began = time.monotonic()
        try:
            response = requests.request(
                method,
                f"{self.url}{path}",
                headers={"Connection": "close"},
                timeout=10,
                verify=self.verify,
                **kwargs,
            )
        except requests.RequestException as exc:
            self.failures.append(f"{method} {path}: {type(exc).__name__}")
            return None
        self.latencies.append(time.monotonic() - began)
        if response.status_code != expected:
            self.failures.append(f"{method} {path}: {response.status_code}")
            return None
        self.ok += 1
        return response

    def _run(self) -> None:
        while not self._stop.is_set():
            created = self._call("POST", "/data", 201, json={"beside": "stalled"}, auth=WRITER)
            if created is not None:
                self._call("GET", f"/data/{created.json()['id']}", 200, auth=READER)
            self._call("GET", "/healthz", 200)
            self._call("GET", "/", 200)

    def summary(self) -> dict[str, object]:
        return {
            "sent": self.sent,
            "ok": self.ok,
            "ok_share": round(self.ok / self.sent, 4) if self.sent else None,
            "latency_s": _spread(sorted(self.latencies)),
            "failures": self.failures[:10],
        }


def resident_mib(pid: int) -> float:
    """Resident memory of a process and its children (gunicorn's master and workers)."""
    total_kib = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):
            continue  # gone meanwhile
        if int(fields["Pid"]) == pid or int(fields["PPid"]) == pid:
            total_kib += int(fields.get("VmRSS", "0 kB").split()[0])
    return total_kib / 1024


class PeakMemory(_Background):
    """The highest resident memory of gunicorn's processes, sampled every 0.2 s."""

    def __init__(self, pid: int) -> None:
        super().__init__()
        self.pid = pid
        self.peak = 0.0

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, resident_mib(self.pid))


@contextmanager
def prioritised(pids: list[int], niceness: int = -10) -> Iterator[bool]:
    """Run ``pids`` (0: this process) at ``niceness`` for the block, then as before: a load
    test's service, database and clients then get the machine's cores whatever else runs
    beside them (a pod's CPU request guarantees it a share of its node the same way). Yields
    whether it could (lowering niceness needs root)."""
    before = {pid: os.getpriority(os.PRIO_PROCESS, pid) for pid in pids}
    try:
        for pid in pids:
            os.setpriority(os.PRIO_PROCESS, pid, niceness)
    except PermissionError:
        yield False
    else:
        yield True
    finally:
        for pid, value in before.items():
            with suppress(ProcessLookupError):
                os.setpriority(os.PRIO_PROCESS, pid, value)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def throwaway_pki(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate it signed for 127.0.0.1 and localhost; returns the CA
    certificate, the server certificate and the server key (mode 0600)."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("flaskapp test CA"))
        .issuer_name(_name("flaskapp test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("flask-service"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = (directory / n for n in ("ca.pem", "tls.crt", "tls.key"))
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path
