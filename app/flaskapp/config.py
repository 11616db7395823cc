"""Service configuration, read from the environment in one place and validated."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote_plus

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
WORKER_CLASSES = ("gevent", "gthread")
SCOPES = ("read", "write")
_DB_NAME = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
_HOST = re.compile(r"^[A-Za-z0-9.\-:\[\]]{1,253}$")
_KEY_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_KEY_FIELDS = ("name", "scope", "sha256")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class ApiKey:
    """One client key as the service knows it: its name, scope and the SHA-256 of the key."""

    name: str
    scope: str
    sha256: str

    @property
    def can_write(self) -> bool:
        return self.scope == "write"


@dataclass(frozen=True)
class Settings:
    mongodb_uri: str
    mongodb_database: str
    mongodb_timeout_ms: int
    query_timeout_ms: int
    max_body_bytes: int
    listing_max_bytes: int
    listing_concurrency: int
    log_level: str
    port: int
    gunicorn_workers: int
    gunicorn_worker_class: str
    gunicorn_worker_connections: int
    gunicorn_threads: int
    api_keys: tuple[ApiKey, ...]
    auth_max_failures: int
    auth_failure_window_seconds: int
    metrics_port: int
    tls_cert_file: str | None
    tls_key_file: str | None
    body_timeout_seconds: int
    write_timeout_seconds: int

    @property
    def mongodb_target(self) -> str:
        """The URI without credentials, safe to log."""
        return re.sub(r"//[^@/]*@", "//***@", self.mongodb_uri)


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = int(raw, 10)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of ``choices``, matched without regard to case (they are all upper or all lower)."""
    raw = env.get(name, "").strip() or default
    value = raw.upper() if default.isupper() else raw.lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _api_keys(env: Mapping[str, str]) -> tuple[ApiKey, ...]:
    """APP_API_KEYS: a JSON array of {"name", "scope", "sha256"}. No message ever quotes a
    value other than a name, so a key pasted where its hash belongs is not written to a log."""
    raw = env.get("APP_API_KEYS", "").strip()
    if raw == "":
        return ()
    try:
        items = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"APP_API_KEYS is not valid JSON: {exc}") from None
    if not isinstance(items, list):
        raise ConfigError("APP_API_KEYS must be a JSON array of objects")
    keys: list[ApiKey] = []
    for number, item in enumerate(items, start=1):
        where = f"APP_API_KEYS item {number}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be an object with name, scope and sha256")
        unknown = sorted(set(item) - set(_KEY_FIELDS))
        if unknown:
            raise ConfigError(
                f"{where} has unknown field {unknown[0]!r}; the fields are name, scope and sha256"
            )
        name, scope, digest = (item.get(field) for field in _KEY_FIELDS)
        if not isinstance(name, str) or not _KEY_NAME.match(name):
            raise ConfigError(
                f"{where}: name must be 1-64 characters of letters, digits, '.', '_' or '-'"
                + (f", got {name!r}" if isinstance(name, str) else "")
            )
        if scope not in SCOPES:
            raise ConfigError(f"{where} ({name}): scope must be read or write")
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise ConfigError(
                f"{where} ({name}): sha256 must be 64 lowercase hexadecimal characters, "
                "the SHA-256 of the key (never the key itself)"
            )
        if any(key.name == name for key in keys):
            raise ConfigError(f"{where}: the name {name!r} is used twice")
        keys.append(ApiKey(name, scope, digest))
    return tuple(keys)


def _tls_files(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    cert = env.get("APP_TLS_CERT_FILE", "").strip() or None
    key = env.get("APP_TLS_KEY_FILE", "").strip() or None
    if (cert is None) != (key is None):
        raise ConfigError("APP_TLS_CERT_FILE and APP_TLS_KEY_FILE must be set together")
    for name, path in (("APP_TLS_CERT_FILE", cert), ("APP_TLS_KEY_FILE", key)):
        if path is not None and not os.access(path, os.R_OK):
            raise ConfigError(f"{name} names a file that does not exist or cannot be read: {path}")
    return cert, key


# Two workers fit a 500m CPU / 500Mi container. os.cpu_count() would report the node's
# cores, not the container's CPU limit, so the default does not follow it.
DEFAULT_WORKERS = 2
# Connections one gevent worker holds at once. A connection waiting on its client costs a
# greenlet of about 17 KiB, so the two workers hold a few thousand stalled clients and still
# accept ordinary ones, within the pod's memory (docs/service.md, "Deadlines").
DEFAULT_WORKER_CONNECTIONS = 5000


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env

    database = env.get("MONGODB_DATABASE", "").strip() or "flaskdb"
    if not _DB_NAME.match(database):
        raise ConfigError(
            f"MONGODB_DATABASE must be 1-63 characters of letters, digits, '_' or '-', "
            f"got {database!r}"
        )
    timeout_ms = _int(env, "MONGODB_TIMEOUT_MS", 3000, 100, 600_000)

    uri = env.get("MONGODB_URI", "").strip()
    if uri:
        if not uri.startswith(("mongodb://", "mongodb+srv://")):
            raise ConfigError("MONGODB_URI must start with mongodb:// or mongodb+srv://")
    else:
        host = env.get("MONGODB_HOST", "").strip() or "mongodb-service"
        if not _HOST.match(host):
            raise ConfigError(f"MONGODB_HOST is not a valid host name, got {host!r}")
        port = _int(env, "MONGODB_PORT", 27017, 1, 65535)
        user = env.get("MONGODB_USERNAME", "")
        password = env.get("MONGODB_PASSWORD", "")
        if bool(user) != bool(password):
            raise ConfigError("MONGODB_USERNAME and MONGODB_PASSWORD must be set together")
        auth_source = env.get("MONGODB_AUTH_SOURCE", "").strip() or database
        if not _DB_NAME.match(auth_source):
            raise ConfigError(f"MONGODB_AUTH_SOURCE is not a valid database name: {auth_source!r}")
        creds = f"{quote_plus(user)}:{quote_plus(password)}@" if user else ""
        query = f"?authSource={auth_source}" if user else ""
        uri = f"mongodb://{creds}{host}:{port}/{query}"

    log_level = _choice(env, "LOG_LEVEL", "INFO", LOG_LEVELS)
    port = _int(env, "PORT", 8000, 1, 65535)
    metrics_port = _int(env, "APP_METRICS_PORT", 9100, 0, 65535)
    if metrics_port == port:
        raise ConfigError(f"APP_METRICS_PORT must differ from PORT ({port}), or be 0 (no metrics)")
    tls_cert_file, tls_key_file = _tls_files(env)

    return Settings(
        mongodb_uri=uri,
        mongodb_database=database,
        mongodb_timeout_ms=timeout_ms,
        query_timeout_ms=_int(env, "APP_QUERY_TIMEOUT_MS", 5000, 10, 600_000),
        max_body_bytes=_int(env, "APP_MAX_BODY_BYTES", 65536, 2, 16 * 1024 * 1024),
        listing_max_bytes=_int(env, "APP_LISTING_MAX_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024),
        listing_concurrency=_int(env, "APP_LISTING_CONCURRENCY", 2, 1, 64),
        log_level=log_level,
        port=port,
        gunicorn_workers=_int(env, "GUNICORN_WORKERS", DEFAULT_WORKERS, 1, 32),
        gunicorn_worker_class=_choice(env, "GUNICORN_WORKER_CLASS", "gevent", WORKER_CLASSES),
        gunicorn_worker_connections=_int(
            env, "GUNICORN_WORKER_CONNECTIONS", DEFAULT_WORKER_CONNECTIONS, 10, 20_000
        ),
        gunicorn_threads=_int(env, "GUNICORN_THREADS", 4, 1, 64),
        api_keys=_api_keys(env),
        auth_max_failures=_int(env, "APP_AUTH_MAX_FAILURES", 20, 1, 100_000),
        auth_failure_window_seconds=_int(env, "APP_AUTH_FAILURE_WINDOW_SECONDS", 60, 1, 86_400),
        metrics_port=metrics_port,
        tls_cert_file=tls_cert_file,
        tls_key_file=tls_key_file,
        body_timeout_seconds=_int(env, "APP_BODY_TIMEOUT_SECONDS", 10, 1, 300),
        write_timeout_seconds=_int(env, "APP_WRITE_TIMEOUT_SECONDS", 10, 1, 300),
    )
