"""Fixtures: a real MongoDB-wire server (FerretDB, or TEST_MONGODB_URI) and the service."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pymongo import MongoClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The service's package, for tests that call it in-process.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "app"))

from support import SUMMARY, FerretDB, Gunicorn, ferretdb_binary

EXTERNAL_URI = os.environ.get("TEST_MONGODB_URI", "").strip()
needs_ferretdb = pytest.mark.skipif(
    bool(EXTERNAL_URI),
    reason="stops and restarts the database server; runs only with the FerretDB fixture",
)


@dataclass
class Mongo:
    """Where the tests' database server is and how to reach it as an administrator."""

    admin_uri: str
    host: str
    port: int
    ferretdb: FerretDB | None

    def client(self) -> MongoClient:
        return MongoClient(self.admin_uri, serverSelectionTimeoutMS=5000, tz_aware=True)

    @property
    def is_ferretdb(self) -> bool:
        """FerretDB (started here or behind TEST_MONGODB_URI) rather than MongoDB."""
        with self.client() as client:
            return "ferretdbVersion" in client.admin.command("buildInfo")


@pytest.fixture(scope="session")
def ferretdb_bin() -> str:
    return ferretdb_binary()


@pytest.fixture(scope="session")
def mongo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mongo]:
    if EXTERNAL_URI:
        with MongoClient(EXTERNAL_URI, serverSelectionTimeoutMS=5000) as client:
            client.admin.command("ping")
            host, port = client.address or ("127.0.0.1", 27017)
        yield Mongo(EXTERNAL_URI, host, port, None)
        return
    with FerretDB(ferretdb_binary(), tmp_path_factory.mktemp("ferretdb") / "data") as server:
        yield Mongo(server.admin_uri, "127.0.0.1", server.port, server)


@pytest.fixture(scope="session")
def database_name(mongo: Mongo) -> Iterator[str]:
    name = f"flaskapp_test_{uuid.uuid4().hex[:8]}"
    yield name
    with mongo.client() as client:
        client.drop_database(name)


def service_env(uri: str, database: str, **extra: str) -> dict[str, str]:
    """The environment of a test service. Failed attempts are not limited here (the tests of
    many bad requests from one address would turn each other's 401 into 429); test_auth.py
    pins the limit on services of its own."""
    return {
        "MONGODB_URI": uri,
        "MONGODB_DATABASE": database,
        "MONGODB_TIMEOUT_MS": "1500",
        "LOG_LEVEL": "INFO",
        "APP_AUTH_MAX_FAILURES": "100000",
        **extra,
    }


@pytest.fixture(scope="session")
def service(
    mongo: Mongo, database_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gunicorn]:
    """The service under gunicorn with two workers, shared by the API tests."""
    with Gunicorn(
        service_env(mongo.admin_uri, database_name), tmp_path_factory.mktemp("service")
    ) as server:
        yield server


@pytest.fixture
def base_url(service: Gunicorn) -> str:
    return service.url


@pytest.fixture
def records(mongo: Mongo, database_name: str) -> Iterator:
    """The records collection as the service sees it, read directly."""
    with mongo.client() as client:
        yield client[database_name]["records"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARY:
        terminalreporter.section("flaskapp")
        for line in SUMMARY:
            terminalreporter.write_line(line)
