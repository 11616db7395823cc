"""Validation and conversion of the records stored under /data."""

from __future__ import annotations

import base64
import binascii
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from .errors import ApiError

MAX_DEPTH = 32
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def parse_object(raw: bytes) -> dict[str, Any]:
    """Parse a request body that must be one JSON object with storable keys and values."""
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "malformed_json", f"The body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "not_an_object", "The body must be a JSON object.")
    _check(value, "$", 0)
    return value


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, "invalid_value", f"{where} holds an unpaired surrogate.") from None


def _check(value: object, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ApiError(400, "too_deep", f"Nesting deeper than {MAX_DEPTH} levels is refused.")
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "" or key.startswith("$") or "." in key or "\x00" in key:
                raise ApiError(
                    400,
                    "invalid_key",
                    f"Key {key!r} at {where} is refused: keys must be non-empty, "
                    "must not start with '$' and must not contain '.' or NUL.",
                )
            _check_text(key, where)
            _check(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check(item, f"{where}[{index}]", depth + 1)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ApiError(400, "invalid_value", f"{where} is outside the 64-bit integer range.")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ApiError(400, "invalid_value", f"{where} is not a finite number.")
    elif isinstance(value, str):
        _check_text(value, where)


def now_ms() -> datetime:
    """The current UTC time at the millisecond precision the database stores."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_id(text: str) -> ObjectId:
    if not ObjectId.is_valid(text) or len(text) != 24:
        raise ApiError(400, "invalid_id", "A record id is 24 hexadecimal characters.")
    return ObjectId(text)


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit():
        raise ApiError(400, "invalid_limit", f"limit must be an integer from 1 to {MAX_LIMIT}.")
    limit = int(raw)
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "invalid_limit", f"limit must be an integer from 1 to {MAX_LIMIT}.")
    return limit


def encode_cursor(created_at: datetime, record_id: ObjectId) -> str:
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    millis = (created_at - _EPOCH) // _MS
    raw = f"{millis}:{record_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[datetime, ObjectId]:
    """Return the (created_at, id) of the last record of the previous page."""
    bad = ApiError(400, "invalid_cursor", "cursor is not a value returned as next_cursor.")
    if not text or len(text) > 64 or not text.isascii():
        raise bad
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
        millis_text, id_text = raw.split(":")
        if not millis_text.isdigit() or len(id_text) != 24 or not ObjectId.is_valid(id_text):
            raise bad
        created_at = _EPOCH + int(millis_text) * _MS
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError, OSError):
        raise bad from None
    return created_at, ObjectId(id_text)


def to_json(document: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(document["_id"]),
        "created_at": iso(document["created_at"]),
        "data": document.get("data", {}),
    }
