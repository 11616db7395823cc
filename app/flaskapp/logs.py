"""JSON-lines logging with the current request id."""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
from datetime import UTC, datetime

from flask import g, has_request_context

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime"}


def new_request_id(incoming: str | None) -> str:
    """Reuse a well-formed X-Request-ID from the client, otherwise make one."""
    if incoming and _REQUEST_ID.match(incoming):
        return incoming
    return secrets.token_hex(16)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context() and "request_id" in g:
            entry["request_id"] = g.request_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str) -> None:
    """Send every log record of the process to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # pymongo logs every command at DEBUG; keep it at INFO unless asked otherwise.
    logging.getLogger("pymongo").setLevel(max(logging.INFO, logging.getLevelName(level)))
