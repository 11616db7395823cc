"""Service configuration, read from the environment in one place and validated."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote_plus

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
WORKER_CLASSES = ("gevent", "gthread")
_DB_NAME = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
_HOST = re.compile(r"^[A-Za-z0-9.\-:\[\]]{1,253}$")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


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


# Two workers fit a 500m CPU / 500Mi container. os.cpu_count() would report the node's
# cores, not the container's CPU limit, so the default does not follow it.
DEFAULT_WORKERS = 2


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

    return Settings(
        mongodb_uri=uri,
        mongodb_database=database,
        mongodb_timeout_ms=timeout_ms,
        query_timeout_ms=_int(env, "APP_QUERY_TIMEOUT_MS", 5000, 10, 600_000),
        max_body_bytes=_int(env, "APP_MAX_BODY_BYTES", 65536, 2, 16 * 1024 * 1024),
        listing_max_bytes=_int(env, "APP_LISTING_MAX_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024),
        listing_concurrency=_int(env, "APP_LISTING_CONCURRENCY", 2, 1, 64),
        log_level=log_level,
        port=_int(env, "PORT", 8000, 1, 65535),
        gunicorn_workers=_int(env, "GUNICORN_WORKERS", DEFAULT_WORKERS, 1, 32),
        gunicorn_worker_class=_choice(env, "GUNICORN_WORKER_CLASS", "gevent", WORKER_CLASSES),
        gunicorn_worker_connections=_int(env, "GUNICORN_WORKER_CONNECTIONS", 1000, 10, 10_000),
        gunicorn_threads=_int(env, "GUNICORN_THREADS", 4, 1, 64),
    )
