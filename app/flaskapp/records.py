"""Validation and conversion of the records stored under /data."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from .errors import ApiError

MAX_DEPTH = 32
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
# The longest cursor the service accepts (its own are at most 54 characters).
MAX_CURSOR = 64
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# One JSON string with its escapes. It always matches from an opening quote: an unterminated
# string (malformed JSON) runs to the end, so scanning stays linear whatever the input.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS = frozenset(b"[{")
# Only a \u escape of a surrogate can put an unpaired surrogate into a parsed string.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _too_deep() -> ApiError:
    return ApiError(400, "too_deep", f"Nesting deeper than {MAX_DEPTH} levels is refused.")


def nesting_exceeds(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the objects and arrays of a JSON text nest deeper than ``limit``.

    Reads bytes without parsing and without recursion, ignoring brackets inside strings, so
    it answers for any input before the parser sees it. On malformed JSON the answer is
    about the brackets up to where the text stops being JSON or beyond, never an error."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    depth = 0
    for byte in brackets:
        if byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def parse_object(raw: bytes) -> dict[str, Any]:
    """Parse a request body that must be one JSON object with storable keys and values."""
    if nesting_exceeds(raw):
        raise _too_deep()
    try:
        value = _DECODER.decode(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "malformed_json", f"The body is not valid JSON: {exc}") from None
    if type(value) is not dict:
        raise ApiError(400, "not_an_object", "The body must be a JSON object.")
    check_tree(value, texts=_SURROGATE_ESCAPE.search(raw) is not None)
    return value


# A position in the document: None for the root, else (parent position, key or index).
_Where = tuple[Any, str | int] | None


def _where(position: _Where) -> str:
    parts: list[str] = []
    while position is not None:
        position, step = position
        parts.append(f"[{step}]" if type(step) is int else f".{step}")
    return "$" + "".join(reversed(parts))


def _check_text(text: str, position: _Where) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(
            400, "invalid_value", f"{_where(position)} holds an unpaired surrogate."
        ) from None


def _check_scalar(value: int | float | str, parent: _Where, step: str | int, texts: bool) -> None:
    kind = type(value)
    if kind is int:
        if not _INT64_MIN <= value <= _INT64_MAX:
            where = _where((parent, step))
            raise ApiError(400, "invalid_value", f"{where} is outside the 64-bit integer range.")
    elif kind is float:
        if not math.isfinite(value):
            where = _where((parent, step))
            raise ApiError(400, "invalid_value", f"{where} is not a finite number.")
    elif kind is str and texts:
        _check_text(value, (parent, step))


def check_tree(root: dict[str, Any], texts: bool = True) -> None:
    """Refuse keys and values MongoDB must not store, and nesting deeper than MAX_DEPTH.

    Walks the parsed document with an explicit stack, so no depth can exhaust the
    interpreter's. ``texts=False`` skips the surrogate check of strings when the raw text
    holds no surrogate escape (the UTF-8 decoder admits none otherwise)."""
    stack: list[tuple[dict[str, Any] | list[Any], int, _Where]] = [(root, 1, None)]
    while stack:
        container, level, position = stack.pop()
        if level > MAX_DEPTH:
            raise _too_deep()
        if type(container) is dict:
            items: Any = container.items()
        else:
            items = enumerate(container)
        for step, item in items:
            if type(step) is str:
                if step == "" or step[0] == "$" or "." in step or "\x00" in step:
                    raise ApiError(
                        400,
                        "invalid_key",
                        f"Key {step!r} at {_where(position)} is refused: keys must be "
                        "non-empty, must not start with '$' and must not contain '.' or NUL.",
                    )
                if texts:
                    _check_text(step, position)
            kind = type(item)
            if kind is dict or kind is list:
                stack.append((item, level + 1, (position, step)))
            elif kind is not bool and item is not None:
                _check_scalar(item, position, step, texts)


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
    if not text or len(text) > MAX_CURSOR or not text.isascii():
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
