"""Real servers for the service's tests and benchmark: FerretDB and gunicorn processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote_plus

import requests
from pymongo import MongoClient
from pymongo.errors import PyMongoError

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "app"
VENV_BIN = Path(sys.executable).parent
ADMIN_USER = "root"
ADMIN_PASSWORD = "root-test-password"
ADMIN_DB = "admin"
# Lines the session prints at its end (image size, ...), whatever pytest captured.
SUMMARY: list[str] = []


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
        self, binary: str, data_dir: Path, port: int | None = None, listen_host: str = "127.0.0.1"
    ) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.port = port or free_port()
        self.listen_host = listen_host
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-ferretdb.log"

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
    """The service under its production gunicorn configuration, on a free port."""

    def __init__(self, env: dict[str, str], workdir: Path, workers: int = 2) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.log_path = workdir / f"gunicorn-{self.port}.log"
        self.metrics_dir = workdir / f"metrics-{self.port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "GUNICORN_"))},
            "PYTHONPATH": str(APP_DIR),
            "PORT": str(self.port),
            "GUNICORN_WORKERS": str(workers),
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            str(VENV_BIN / "gunicorn"),
            "--config",
            str(APP_DIR / "gunicorn.conf.py"),
            "flaskapp.wsgi:app",
        ]

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
        try:
            return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

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


class SlowClients:
    """``count`` connections that each send a request line and then one header line every
    ``interval`` seconds, never finishing the request; one that the server closes is opened
    again, so ``count`` stay open. Runs in a background thread until stopped."""

    def __init__(self, port: int, count: int, interval: float = 2.0) -> None:
        self.port = port
        self.count = count
        self.interval = interval
        self.opened = 0
        self.closed_by_server = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

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

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
