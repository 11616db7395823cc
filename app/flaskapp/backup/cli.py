"""Command line of the backup tool: arguments, logging, outcome and exit status."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import ConnectionFailure, PyMongoError

from ..config import LOG_LEVELS, ConfigError, Settings, load_settings
from ..logs import configure_logging
from . import archive, catalog
from .dump import dump
from .restore import restore

PROG = "flaskapp.backup"
DEFAULT_DIR = "/backups"
# A getMore of a large batch or an index build may take long; a dead server still fails.
SOCKET_TIMEOUT_MS = 300_000
# Reasons that are failures of the database or the file system rather than refusals.
FAILURES = frozenset({"database", "io", "internal"})
# What a refusal or failure means for each command, before the clause that says why.
NOTHING_DONE = {
    "dump": "No backup was written",
    "restore": "Nothing was restored",
    "verify": "Verification failed",
    "list": "No backups were listed",
    "prune": "Nothing was pruned",
}

log = logging.getLogger(PROG)


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--dir",
        type=Path,
        default=None,
        help=f"backup directory (default: $BACKUP_DIR, else {DEFAULT_DIR})",
    )
    parser = argparse.ArgumentParser(
        prog=f"python -m {PROG}",
        description="Back up and restore the records collection. The database and its "
        "credentials come from the MONGODB_* environment variables, as for the service.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    dump_cmd = commands.add_parser("dump", parents=[common], help="write a new backup")
    dump_cmd.add_argument("--keep", type=int, help="then delete all but the KEEP newest")
    restore_cmd = commands.add_parser("restore", parents=[common], help="restore a backup")
    restore_cmd.add_argument("name", help="a backup file name in the directory, or latest")
    restore_cmd.add_argument(
        "--replace", action="store_true", help="replace the records that are there"
    )
    verify_cmd = commands.add_parser("verify", parents=[common], help="check a backup")
    verify_cmd.add_argument("name", help="a backup file name in the directory, or latest")
    commands.add_parser("list", parents=[common], help="list the backups, newest first")
    prune_cmd = commands.add_parser("prune", parents=[common], help="delete old backups")
    prune_cmd.add_argument("--keep", type=int, required=True, help="backups to keep (1 or more)")
    return parser


def _client(settings: Settings) -> MongoClient:
    timeout = settings.mongodb_timeout_ms
    return MongoClient(
        settings.mongodb_uri,
        appname=PROG,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout,
        connectTimeoutMS=timeout,
        socketTimeoutMS=max(timeout, SOCKET_TIMEOUT_MS),
    )


def _done(message: str, **fields: object) -> None:
    log.info(message, extra={"result": "done", **fields})


def _run_dump(args: argparse.Namespace, directory: Path, settings: Settings) -> None:
    if args.keep is not None and args.keep < 1:
        raise archive.BackupError("usage", f"--keep must be at least 1, got {args.keep}")
    with _client(settings) as client:
        result = dump(client, settings.mongodb_database, directory)
    fields: dict[str, object] = {
        "file": result.name,
        "directory": str(directory),
        "database": settings.mongodb_database,
        "records": result.count,
        "left_out": result.left_out,
        "indexes": result.indexes,
        "bytes": result.size,
        "sha256": result.sha256,
        "cut": result.created,
        "engine": result.engine,
        "seconds": round(result.seconds, 3),
    }
    message = (
        f"Wrote {result.name}: {_count(result.count, 'record', 'records')} of "
        f"{settings.mongodb_database} created up to {result.created}, "
        f"{_count(result.indexes, 'index', 'indexes')}, {_mib(result.size)}, "
        f"in {result.seconds:.1f} s."
    )
    if args.keep is not None:
        kept, deleted = catalog.prune(directory, args.keep)
        fields["pruned"] = [path.name for path in deleted]
        kept_text = _count(len(kept), "backup", "backups")
        message = (
            message[:-1] + f"; kept {kept_text} (at most {args.keep}), deleted {len(deleted)}."
        )
    _done(message, **fields)


def _run_restore(args: argparse.Namespace, directory: Path, settings: Settings) -> None:
    path = catalog.resolve(directory, args.name)
    with _client(settings) as client:
        result = restore(client, settings.mongodb_database, path, args.replace)
    replaced = _count(result.replaced, "record", "records")
    replaced = f", replacing {replaced}" if result.replaced else ""
    _done(
        f"Restored {_count(result.count, 'record', 'records')} and "
        f"{_count(result.indexes, 'index', 'indexes')} from {result.name} "
        f"into {result.database}.records{replaced}, in {result.seconds:.1f} s.",
        file=result.name,
        database=result.database,
        records=result.count,
        indexes=result.indexes,
        replaced=result.replaced,
        cut=result.created,
        seconds=round(result.seconds, 3),
    )


def _run_verify(args: argparse.Namespace, directory: Path) -> None:
    summary = archive.verify(catalog.resolve(directory, args.name))
    header = summary.header
    _done(
        f"{summary.name} is a complete backup of {header['database']}.{header['collection']}: "
        f"{_count(summary.count, 'record', 'records')} created up to {header['created']}, "
        f"{_count(len(summary.indexes), 'index', 'indexes')}, SHA-256 {summary.sha256}.",
        file=summary.name,
        records=summary.count,
        bytes=summary.size,
        sha256=summary.sha256,
        cut=header["created"],
    )


def _run_list(directory: Path) -> None:
    found = catalog.backups(directory)
    for path in found:
        try:
            summary = archive.peek(path)
        except archive.BackupError as exc:
            entry: dict[str, object] = {"name": path.name, "damaged": exc.clause}
        else:
            entry = {
                "name": summary.name,
                "created": summary.header["created"],
                "database": summary.header["database"],
                "records": summary.count,
                "bytes": summary.size,
                "sha256": summary.sha256,
            }
        print(json.dumps(entry), flush=True)
    _done(
        f"{_count(len(found), 'backup', 'backups')} in {directory}.",
        directory=str(directory),
        backups=len(found),
    )


def _run_prune(args: argparse.Namespace, directory: Path) -> None:
    kept, deleted = catalog.prune(directory, args.keep)
    names = ", ".join(path.name for path in deleted) or "none"
    _done(
        f"Kept {_count(len(kept), 'backup', 'backups')} in {directory} and deleted "
        f"{len(deleted)}: {names}.",
        directory=str(directory),
        kept=[path.name for path in kept],
        deleted=[path.name for path in deleted],
    )


def _fail(command: str, reason: str, clause: str, **fields: object) -> int:
    log.error(
        f"{NOTHING_DONE[command]}: {clause}.",
        extra={"result": "failed" if reason in FAILURES else "refused", "reason": reason, **fields},
    )
    return 1


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    args = _parser().parse_args(argv)
    level = (env.get("LOG_LEVEL", "").strip() or "INFO").upper()
    configure_logging(level if level in LOG_LEVELS else "INFO")
    directory = args.dir or Path(env.get("BACKUP_DIR", "").strip() or DEFAULT_DIR)
    runners: dict[str, Callable[[], None]] = {
        "verify": lambda: _run_verify(args, directory),
        "list": lambda: _run_list(directory),
        "prune": lambda: _run_prune(args, directory),
    }
    try:
        if args.command in ("dump", "restore"):
            settings = load_settings(env)
            runner = _run_dump if args.command == "dump" else _run_restore
            runner(args, directory, settings)
        else:
            runners[args.command]()
    except ConfigError as exc:
        print(f"{PROG}: configuration error: {exc}", file=sys.stderr)
        return 2
    except archive.BackupError as exc:
        code = _fail(args.command, exc.reason, exc.clause, **exc.fields)
        return 2 if exc.reason == "usage" else code
    except ConnectionFailure as exc:
        first = str(exc).split(",")[0].splitlines()[0]
        return _fail(args.command, "database", f"the database did not answer ({first})")
    except PyMongoError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return _fail(
            args.command, "database", f"the database failed ({type(exc).__name__}: {first})"
        )
    except OSError as exc:
        return _fail(args.command, "io", f"{exc.strerror or exc} ({exc.filename or directory})")
    except Exception as exc:
        log.exception(
            f"{NOTHING_DONE[args.command]}: an unexpected {type(exc).__name__} occurred.",
            extra={"result": "failed", "reason": "internal"},
        )
        return 1
    return 0
