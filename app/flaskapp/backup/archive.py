"""The backup file: a header line, one line a record, a trailer line.

Every line is one JSON object followed by a newline:

- line 1, the header: format name and version, database, collection, the cut time
  (``created``), the engine it came from, the collection's indexes, whether a schedule made
  it (``scheduled``) and the collection's size on the server then (``collection_bytes``,
  which the next dump's space estimate scales from);
- then one line a record, in MongoDB Extended JSON v2, canonical mode, so that every BSON
  type (ObjectId, date, 32/64-bit integer, double, ...) and the order of keys come back exactly;
- last, the trailer: the number of records and the SHA-256 of every byte before the trailer.

A file without its trailer, with a record count or checksum that does not match, or with a
line that is not a JSON object is refused by ``verify`` with a sentence that names the file.
Reading and writing go a line at a time, so memory does not grow with the file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bson import json_util
from bson.codec_options import DatetimeConversion
from bson.json_util import JSONMode, JSONOptions

FORMAT = "flask-k8s-records-backup"
VERSION = 1
# Records: canonical Extended JSON, so that types survive the round trip.
RECORD_JSON = JSONOptions(
    json_mode=JSONMode.CANONICAL,
    tz_aware=True,
    datetime_conversion=DatetimeConversion.DATETIME_AUTO,
)
# The header: relaxed Extended JSON, readable (index directions are plain numbers).
HEADER_JSON = JSONOptions(
    json_mode=JSONMode.RELAXED,
    tz_aware=True,
    datetime_conversion=DatetimeConversion.DATETIME_AUTO,
)
_TRAILER_KEYS = frozenset({"trailer", "count", "sha256"})
_HEADER_KEYS = frozenset({"format", "version", "database", "collection", "created", "indexes"})


class BackupError(Exception):
    """A refusal or failure, as a clause that names what is wrong.

    ``reason`` is a stable word for programs (the playbooks): damaged, not_found, not_empty,
    changed, database, usage; ``fields`` carry the figures a program needs to say more."""

    def __init__(self, reason: str, clause: str, **fields: object) -> None:
        super().__init__(clause)
        self.reason = reason
        self.clause = clause
        self.fields = fields


class Terminated(BaseException):
    """The process was asked to stop (SIGTERM): raised where it runs, so that every cleanup
    (a partial file, a staging collection, the write freeze) still happens."""


def damaged(clause: str) -> BackupError:
    return BackupError("damaged", clause)


@dataclass
class Summary:
    """What verification found: the header, and the trailer's count and checksum."""

    name: str
    header: dict[str, Any]
    count: int
    sha256: str
    size: int
    indexes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def scheduled(self) -> bool:
        """Whether the backup schedule wrote it (a backup from before the field: no)."""
        return self.header.get("scheduled") is True

    @property
    def collection_bytes(self) -> int:
        """The collection's size on the server when it was dumped (0: not recorded)."""
        value = self.header.get("collection_bytes")
        return value if isinstance(value, int) and value > 0 else 0


def encode_line(value: dict[str, Any], options: JSONOptions) -> bytes:
    text = json_util.dumps(value, json_options=options, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8") + b"\n"


def decode_record(line: bytes) -> dict[str, Any]:
    return json_util.loads(line, json_options=RECORD_JSON)


class Writer:
    """Writes a backup to an open binary file, hashing as it goes."""

    def __init__(self, out: IO[bytes], header: dict[str, Any]) -> None:
        self._out = out
        self._sha = hashlib.sha256()
        self.count = 0
        self.size = 0
        self._write(encode_line({"format": FORMAT, "version": VERSION, **header}, HEADER_JSON))

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._sha.update(data)
        self.size += len(data)

    def record(self, document: dict[str, Any]) -> None:
        self._write(encode_line(document, RECORD_JSON))
        self.count += 1

    def finish(self) -> str:
        """Write the trailer; return the checksum it carries."""
        digest = self._sha.hexdigest()
        trailer = {"trailer": FORMAT, "count": self.count, "sha256": digest}
        line = json.dumps(trailer, separators=(",", ":")).encode() + b"\n"
        self._out.write(line)
        self.size += len(line)
        return digest


def _json_object(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _header(name: str, line: bytes) -> dict[str, Any]:
    if not line:
        raise damaged(f"{name} is empty")
    if not line.endswith(b"\n"):
        raise damaged(f"{name} is truncated (it ends inside its header line)")
    plain = _json_object(line)
    if plain is None or plain.get("format") != FORMAT:
        raise damaged(f"{name} is not a records backup (its first line is not a backup header)")
    if plain.get("version") != VERSION:
        raise damaged(
            f"{name} has format version {plain.get('version')!r}, "
            f"and this tool reads version {VERSION}"
        )
    header: dict[str, Any] = json_util.loads(line, json_options=HEADER_JSON)
    missing = sorted(_HEADER_KEYS - header.keys())
    if missing or not isinstance(header["indexes"], list):
        raise damaged(
            f"{name} has an incomplete header (it lacks {', '.join(missing) or 'indexes'})"
        )
    return header


def _trailer(line: bytes) -> dict[str, Any] | None:
    value = _json_object(line)
    if value is None or value.keys() != _TRAILER_KEYS or value["trailer"] != FORMAT:
        return None
    if not isinstance(value["count"], int) or not isinstance(value["sha256"], str):
        return None
    return value


def _is_record(line: bytes) -> bool:
    value = _json_object(line)
    return value is not None and "_id" in value


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as src:
        yield from enumerate(src, start=1)


def scan(path: Path) -> Iterator[tuple[int, bytes]]:
    """The record lines of a backup with their line numbers, checked as they go by.

    Raises BackupError (damaged) at the first problem: a bad header, a line that is not a
    record, a missing or broken trailer, a count or checksum that does not match. The caller
    sees every record line before the trailer is checked, so only a complete iteration proves
    the file whole."""
    name = path.name
    sha = hashlib.sha256()
    lines = _lines(path)
    header_line = next(lines, (1, b""))[1]
    _header(name, header_line)
    sha.update(header_line)
    count = 0
    size = len(header_line)
    pending: tuple[int, bytes] | None = None
    for number, line in lines:
        if pending is not None:
            held_number, held = pending
            if not _is_record(held):
                raise damaged(f"{name} is corrupted (line {held_number} is not a record)")
            sha.update(held)
            count += 1
            yield held_number, held
        pending = (number, line)
        size += len(line)
    if pending is None:
        raise damaged(f"{name} is truncated (it ends after its header, without its trailer)")
    last_number, last = pending
    if not last.endswith(b"\n"):
        raise damaged(
            f"{name} is truncated (it ends at byte {size} inside line {last_number}, "
            "without its trailer)"
        )
    trailer = _trailer(last)
    if trailer is None:
        if _is_record(last):
            raise damaged(
                f"{name} is truncated (it ends after line {last_number}, without its trailer)"
            )
        raise damaged(f"{name} is corrupted (its last line is neither a record nor its trailer)")
    if trailer["count"] != count:
        raise damaged(
            f"{name} is corrupted (it holds {count} records, and its trailer says "
            f"{trailer['count']})"
        )
    if trailer["sha256"] != sha.hexdigest():
        raise damaged(
            f"{name} is corrupted (its content does not match the SHA-256 in its trailer)"
        )


def verify(path: Path) -> Summary:
    """Read the whole file and check it; return its summary or raise BackupError."""
    for _ in scan(path):
        pass
    return peek(path)


def peek(path: Path) -> Summary:
    """Header and trailer only, without checking the records (for listings)."""
    with path.open("rb") as src:
        header = _header(path.name, src.readline())
        size = src.seek(0, 2)
        src.seek(max(0, size - 4096))
        tail = src.read().splitlines()
    trailer = _trailer(tail[-1]) if tail else None
    if trailer is None:
        raise damaged(f"{path.name} is truncated (it has no trailer)")
    return Summary(
        name=path.name,
        header=header,
        count=trailer["count"],
        sha256=trailer["sha256"],
        size=size,
        indexes=header["indexes"],
    )
