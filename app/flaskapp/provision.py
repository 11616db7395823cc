"""Ensure the application's database user exists with the configured password.

    python -m flaskapp.provision

Authenticates as the administrator (MONGODB_ADMIN_USERNAME / MONGODB_ADMIN_PASSWORD, auth
database MONGODB_ADMIN_AUTH_SOURCE, default "admin") on MONGODB_HOST:MONGODB_PORT, waits for
the server up to PROVISION_TIMEOUT_SECONDS (default 120; each attempt lasts at most
MONGODB_TIMEOUT_MS, capped at 10 s), then makes sure user
MONGODB_USERNAME exists in MONGODB_DATABASE with password MONGODB_PASSWORD and role readWrite
on that database only. It prints one line saying what it did (created, password updated,
roles updated, unchanged) and never prints a password. On failure it prints one line and
exits non-zero: 1 for a server-side failure, 2 for bad configuration, 3 when the database
refuses the administrator credentials (2 and 3 are certain: a retry fails the same way).

FerretDB 1.24 (with --test-enable-new-auth) implements createUser/updateUser/usersInfo but
refuses any non-empty "roles" (it has authentication, no authorization): there the user is
created without roles and the line says so.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from urllib.parse import quote_plus

from pymongo import MongoClient
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from .config import ConfigError, load_settings

PROG = "flaskapp.provision"
# Exit codes of failures that a retry cannot mend (the Job fails at once on them).
EXIT_CONFIG = 2
EXIT_ADMIN_REFUSED = 3
AUTH_FAILED = 18
NOT_IMPLEMENTED = 238
# A database keeps the administrator its data was created with: refused credentials are not
# those (the role that runs this Job recognises the line by these words).
ADMIN_REFUSED = "the database refused the administrator credentials"


class ProvisionError(RuntimeError):
    pass


class AdminRefused(ProvisionError):
    """The administrator credentials are not those of the database's data."""


def _require(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    if not value:
        raise ConfigError(f"{name} must be set")
    return value


def _client(
    host: str, port: int, user: str, password: str, source: str, timeout_ms: int
) -> MongoClient:
    uri = f"mongodb://{quote_plus(user)}:{quote_plus(password)}@{host}:{port}/?authSource={source}"
    return MongoClient(
        uri,
        appname=PROG,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=max(timeout_ms, 10_000),
    )


def _wait_for_server(client: MongoClient, deadline: float) -> None:
    while True:
        try:
            client.admin.command("ping")
            return
        except OperationFailure as exc:
            if exc.code == AUTH_FAILED:
                raise AdminRefused(
                    f"{ADMIN_REFUSED}: they are not those its data was created with"
                ) from None
            raise
        except ConnectionFailure as exc:
            if time.monotonic() >= deadline:
                raise ProvisionError(f"database not reachable before the deadline: {exc}") from None
            time.sleep(1)


def _password_works(
    host: str, port: int, user: str, password: str, database: str, timeout_ms: int
) -> bool:
    probe = _client(host, port, user, password, database, timeout_ms)
    try:
        probe[database].command("ping")
        return True
    except OperationFailure as exc:
        if exc.code == AUTH_FAILED:
            return False
        raise
    finally:
        probe.close()


def provision(env: Mapping[str, str]) -> str:
    """Do the work; return the line describing what was done."""
    user = _require(env, "MONGODB_USERNAME")
    password = _require(env, "MONGODB_PASSWORD")
    admin_user = _require(env, "MONGODB_ADMIN_USERNAME")
    admin_password = _require(env, "MONGODB_ADMIN_PASSWORD")
    settings = load_settings(env)
    host = env.get("MONGODB_HOST", "").strip() or "mongodb-service"
    port = int(env.get("MONGODB_PORT", "").strip() or "27017")
    database = settings.mongodb_database
    admin_source = env.get("MONGODB_ADMIN_AUTH_SOURCE", "").strip() or "admin"
    raw_timeout = env.get("PROVISION_TIMEOUT_SECONDS", "").strip() or "120"
    if not raw_timeout.isdigit() or not 1 <= int(raw_timeout) <= 3600:
        raise ConfigError(f"PROVISION_TIMEOUT_SECONDS must be 1-3600, got {raw_timeout!r}")
    deadline = time.monotonic() + int(raw_timeout)
    # Each attempt is short so that the deadline, not one long attempt, bounds the wait.
    timeout_ms = min(settings.mongodb_timeout_ms, 10_000)

    wanted_roles = [{"role": "readWrite", "db": database}]
    admin = _client(host, port, admin_user, admin_password, admin_source, timeout_ms)
    try:
        _wait_for_server(admin, deadline)
        db = admin[database]
        found = db.command("usersInfo", {"user": user, "db": database}).get("users", [])
        what = f"user {user!r} on database {database!r}"
        if not found:
            try:
                db.command("createUser", user, pwd=password, roles=wanted_roles)
            except OperationFailure as exc:
                if exc.code != NOT_IMPLEMENTED:
                    raise
                db.command("createUser", user, pwd=password, roles=[])
                return f"{what}: created (the server does not implement roles; none assigned)"
            return f"{what}: created with role readWrite on {database!r}"

        current_roles = [
            {"role": r.get("role"), "db": r.get("db")} for r in found[0].get("roles", [])
        ]
        roles_ok = current_roles == wanted_roles
        if _password_works(host, port, user, password, database, timeout_ms):
            if roles_ok:
                return f"{what}: unchanged"
            try:
                db.command("updateUser", user, roles=wanted_roles)
            except OperationFailure as exc:
                if exc.code != NOT_IMPLEMENTED:
                    raise
                return f"{what}: unchanged (the server does not implement roles)"
            return f"{what}: roles updated to readWrite on {database!r}"
        try:
            db.command("updateUser", user, pwd=password, roles=wanted_roles)
        except OperationFailure as exc:
            if exc.code != NOT_IMPLEMENTED:
                raise
            db.command("updateUser", user, pwd=password)
            return f"{what}: password updated (the server does not implement roles)"
        return f"{what}: password updated"
    finally:
        admin.close()


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    try:
        line = provision(env)
    except ConfigError as exc:
        print(f"{PROG}: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except AdminRefused as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_ADMIN_REFUSED
    except ProvisionError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except PyMongoError as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"{PROG}: error: {type(exc).__name__}: {message}", file=sys.stderr)
        return 1
    print(f"{PROG}: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
