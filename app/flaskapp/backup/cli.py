"""Command line of the backup tool: arguments, logging, outcome and exit status."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from bson import json_util
from pymongo import MongoClient
from pymongo.errors import ConnectionFailure, PyMongoError

from ..config import LOG_LEVELS, ConfigError, Settings, load_settings
from ..logs import configure_logging
from . import archive, catalog, health, retention
from .drill import drill
from .dump import collection_stats, dump
from .restore import RECOVERY_SECONDS, recover, restore
from .text import count, mib, records

PROG = "flaskapp.backup"
DEFAULT_DIR = "/backups"
# The default of --min-ratio: the shrink guard of retention.
MIN_RATIO = 0.5
# A getMore of a large batch or an index build may take long; a dead server still fails.
SOCKET_TIMEOUT_MS = 300_000
# Reasons that are failures of the database or the file system rather than refusals.
FAILURES = frozenset({"database", "io", "internal", "no_space", "terminated"})
# Exit status of a refusal by the retention rules (a backup may have been written).
RETENTION_STATUS = 3
# What a refusal or failure means for each command, before the clause that says why.
NOTHING_DONE = {
    "dump": "No backup was written",
    "restore": "Nothing was restored",
    "recover": "Nothing was recovered",
    "drill": "The drill failed",
    "verify": "Verification failed",
    "list": "No backups were listed",
    "prune": "Nothing was pruned",
    "status": "No status could be given",
}
# The commands that reach the database.
DATABASE_COMMANDS = frozenset({"dump", "restore", "recover", "drill"})

log = logging.getLogger(PROG)


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text!r}")
    return value


def _seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of seconds, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--dir",
        type=Path,
        default=None,
        help=f"backup directory (default: $BACKUP_DIR, else {DEFAULT_DIR})",
    )
    ratio = argparse.ArgumentParser(add_help=False)
    ratio.add_argument(
        "--min-ratio",
        type=_ratio,
        default=MIN_RATIO,
        help="refuse to prune when the newest backup holds fewer than this part of the records "
        f"of the one before it, or of any backup pruning would delete (default {MIN_RATIO}; "
        "0 turns the guard off)",
    )
    parser = argparse.ArgumentParser(
        prog=f"python -m {PROG}",
        description="Back up and restore the records collection. The database and its "
        "credentials come from the MONGODB_* environment variables, as for the service.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    dump_cmd = commands.add_parser("dump", parents=[common, ratio], help="write a new backup")
    dump_cmd.add_argument(
        "--keep", type=int, help="make room by, and then, deleting all but the KEEP newest"
    )
    dump_cmd.add_argument(
        "--scheduled", action="store_true", help="mark the backup as the schedule's"
    )
    restore_cmd = commands.add_parser("restore", parents=[common], help="restore a backup")
    restore_cmd.add_argument("name", help="a backup file name in the directory, or latest")
    restore_cmd.add_argument(
        "--replace", action="store_true", help="replace the records that are there"
    )
    restore_cmd.add_argument(
        "--recovery-seconds",
        type=_seconds,
        default=int(RECOVERY_SECONDS),
        help="how long a failed restore waits for the database to put the records back in "
        f"place (default {int(RECOVERY_SECONDS)})",
    )
    commands.add_parser(
        "recover",
        parents=[common],
        help="finish what a restore that did not finish left, and thaw writes",
    )
    drill_cmd = commands.add_parser(
        "drill", parents=[common], help="restore a backup beside the records and compare"
    )
    drill_cmd.add_argument("--name", default="latest", help="a backup file name, or latest")
    drill_cmd.add_argument(
        "--match", default="{}", help="a MongoDB filter, as JSON, of the records to compare"
    )
    verify_cmd = commands.add_parser("verify", parents=[common], help="check backups whole")
    which = verify_cmd.add_mutually_exclusive_group(required=True)
    which.add_argument("name", nargs="?", help="a backup file name in the directory, or latest")
    which.add_argument("--all", action="store_true", help="every backup in the directory")
    commands.add_parser("list", parents=[common], help="list the backups, newest first")
    prune_cmd = commands.add_parser("prune", parents=[common, ratio], help="delete old backups")
    prune_cmd.add_argument("--keep", type=int, required=True, help="backups to keep (1 or more)")
    status_cmd = commands.add_parser(
        "status", parents=[common], help="the newest good backup, and whether backups are stale"
    )
    status_cmd.add_argument(
        "--max-age-seconds",
        type=_seconds,
        default=None,
        help="the schedule's interval: backups are stale when the newest good scheduled one "
        "is older than twice it",
    )
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


def _print(entry: dict[str, object]) -> None:
    print(json.dumps(entry), flush=True)


class RetentionRefused(Exception):
    """The retention rules refused to prune; the outcome has been logged."""


def _run_dump(args: argparse.Namespace, directory: Path, settings: Settings) -> None:
    if args.keep is not None and args.keep < 1:
        raise archive.BackupError("usage", f"--keep must be at least 1, got {args.keep}")
    catalog.check_directory(directory)
    database = settings.mongodb_database
    with _client(settings) as client:
        stats = collection_stats(client, database)
        room = retention.make_room(
            directory, int(stats.get("size") or 0), args.keep, args.min_ratio
        )
        log.info(
            "room for the next backup",
            extra={
                "needed": room.needed,
                "free": room.free,
                "deleted": [path.name for path in room.deleted],
            },
        )
        result = dump(client, database, directory, stats, scheduled=args.scheduled)
    fields: dict[str, object] = {
        "file": result.name,
        "directory": str(directory),
        "database": database,
        "records": result.count,
        "left_out": result.left_out,
        "indexes": result.indexes,
        "bytes": result.size,
        "sha256": result.sha256,
        "cut": result.created,
        "engine": result.engine,
        "scheduled": result.scheduled,
        "seconds": round(result.seconds, 3),
        "made_room": [path.name for path in room.deleted],
    }
    message = (
        f"Wrote {result.name}: {records(result.count)} of {database} created up to "
        f"{result.created}, {count(result.indexes, 'index', 'indexes')}, {mib(result.size)}, "
        f"in {result.seconds:.1f} s"
    )
    if room.deleted:
        message += (
            f", after deleting {count(len(room.deleted), 'old backup', 'old backups')} "
            f"to make room for about {mib(room.needed)}"
        )
    if args.keep is None:
        _done(message + ".", **fields)
        return
    chosen = retention.plan(retention.stored(directory), args.keep, args.min_ratio)
    deleted = retention.apply(chosen, directory)
    fields["pruned"] = [path.name for path in deleted]
    if chosen.refusal:
        log.error(
            f"{message}; pruned nothing, because {chosen.refusal} (if that is wanted, prune "
            "with --min-ratio 0).",
            extra={"result": "refused", "reason": "retention", **fields},
        )
        raise RetentionRefused
    kept = count(len(chosen.kept), "backup", "backups")
    _done(f"{message}; kept {kept} (at most {args.keep}), deleted {len(deleted)}.", **fields)


def _run_restore(args: argparse.Namespace, directory: Path, settings: Settings) -> None:
    path = catalog.resolve(directory, args.name)
    with _client(settings) as client:
        result = restore(
            client, settings.mongodb_database, path, args.replace, args.recovery_seconds
        )
    replaced = f", replacing {records(result.replaced)}" if result.replaced else ""
    notes = [f"first {done}" for done in result.recovered]
    notes.append(f"writes were frozen for {result.frozen_seconds:.1f} s")
    if result.previous_kept:
        notes.append(
            f"the previous records could not be dropped and stay in {result.previous_kept} "
            "(recover drops them)"
        )
    if result.frozen_until:
        notes.append(
            f"writes stay frozen until {result.frozen_until}: run python -m flaskapp.backup recover"
        )
    _done(
        f"Restored {records(result.count)} and {count(result.indexes, 'index', 'indexes')} "
        f"from {result.name} into {result.database}.records{replaced}, in "
        f"{result.seconds:.1f} s; {'; '.join(notes)}.",
        file=result.name,
        database=result.database,
        records=result.count,
        indexes=result.indexes,
        replaced=result.replaced,
        cut=result.created,
        seconds=round(result.seconds, 3),
        load_seconds=round(result.load_seconds, 3),
        frozen_seconds=round(result.frozen_seconds, 3),
        swap_seconds=round(result.swap_seconds, 3),
        recovered=result.recovered,
        previous_kept=result.previous_kept,
        frozen_until=result.frozen_until,
    )


def _run_recover(settings: Settings) -> None:
    with _client(settings) as client:
        result = recover(client, settings.mongodb_database)
    done = list(result.done) + (["thawed writes"] if result.thawed else [])
    what = "; ".join(done) if done else "no restore had left anything, and writes were not frozen"
    _done(
        f"Recovered: {what}; records holds {records(result.count)}.",
        done=done,
        records=result.count,
    )


def _match(text: str) -> dict[str, Any]:
    try:
        value = json_util.loads(text)
    except (ValueError, TypeError) as exc:
        raise archive.BackupError(
            "usage", f"--match must be a JSON object (a MongoDB filter), got {text!r} ({exc})"
        ) from None
    if not isinstance(value, dict):
        raise archive.BackupError(
            "usage", f"--match must be a JSON object (a MongoDB filter), got {text!r}"
        )
    return value


def _run_drill(args: argparse.Namespace, directory: Path, settings: Settings) -> None:
    match = _match(args.match)
    path = catalog.resolve(directory, args.name)
    with _client(settings) as client:
        result = drill(client, settings.mongodb_database, path, match)
    report = result.report()
    _print(report)
    dropped = "dropped" if result.scratch_dropped else "could not drop (a later drill drops it)"
    _done(
        f"Drilled {result.backup}: restored its {records(result.records)} into {result.scratch} "
        f"and {dropped} it; of the {records(result.matched)} matching {args.match}, "
        f"{result.identical} are identical in records, {result.changed} changed, "
        f"{result.missing_live} missing; in {result.seconds:.1f} s.",
        scratch=result.scratch,
        seconds=round(result.seconds, 3),
        **report,
    )


def _run_verify(args: argparse.Namespace, directory: Path) -> None:
    if not args.all:
        summary = archive.verify(catalog.resolve(directory, args.name))
        header = summary.header
        _done(
            f"{summary.name} is a complete backup of {header['database']}."
            f"{header['collection']}: {records(summary.count)} created up to "
            f"{header['created']}, {count(len(summary.indexes), 'index', 'indexes')}, "
            f"SHA-256 {summary.sha256}.",
            file=summary.name,
            records=summary.count,
            bytes=summary.size,
            sha256=summary.sha256,
            cut=header["created"],
        )
        return
    checked = health.verify_all(directory)
    for entry in checked:
        _print(entry.report())
    damaged = [entry for entry in checked if entry.summary is None]
    if damaged:
        raise archive.BackupError(
            "damaged",
            f"{len(damaged)} of the {count(len(checked), 'backup', 'backups')} in {directory} "
            f"{'is' if len(damaged) == 1 else 'are'} damaged: "
            + "; ".join(entry.damage for entry in damaged),
            damaged=[entry.name for entry in damaged],
        )
    _done(
        f"Read {count(len(checked), 'backup', 'backups')} in {directory} whole: every one is "
        "complete, its records counted and its SHA-256 matching.",
        directory=str(directory),
        backups=len(checked),
        records=sum(entry.summary.count for entry in checked if entry.summary is not None),
    )


def _run_list(directory: Path) -> None:
    found = retention.stored(directory)
    for entry in found:
        if entry.summary is None:
            _print({"name": entry.name, "damaged": entry.damage})
            continue
        _print(
            {
                "name": entry.name,
                "created": entry.summary.header["created"],
                "database": entry.summary.header["database"],
                "records": entry.count,
                "bytes": entry.size,
                "sha256": entry.summary.sha256,
                "scheduled": entry.summary.scheduled,
            }
        )
    _done(
        f"{count(len(found), 'backup', 'backups')} in {directory}.",
        directory=str(directory),
        backups=len(found),
    )


def _run_prune(args: argparse.Namespace, directory: Path) -> None:
    chosen = retention.plan(retention.stored(directory), args.keep, args.min_ratio)
    if chosen.refusal:
        log.error(
            f"Nothing was pruned: {chosen.refusal} (if that is wanted, prune with --min-ratio 0).",
            extra={"result": "refused", "reason": "retention", "directory": str(directory)},
        )
        raise RetentionRefused
    deleted = retention.apply(chosen, directory)
    names = ", ".join(path.name for path in deleted) or "none"
    _done(
        f"Kept {count(len(chosen.kept), 'backup', 'backups')} in {directory} and deleted "
        f"{len(deleted)}: {names}.",
        directory=str(directory),
        kept=[entry.name for entry in chosen.kept],
        deleted=[path.name for path in deleted],
    )


def _hours(seconds: object) -> str:
    return f"{float(seconds) / 3600:.1f} h" if isinstance(seconds, int | float) else "?"


def _run_status(args: argparse.Namespace, directory: Path) -> None:
    report = health.status(directory, args.max_age_seconds)
    _print(report)
    if report["backup"] is None:
        newest = f"There is no good backup in {directory}"
    else:
        kind = "scheduled" if report["scheduled"] else "made by hand"
        newest = (
            f"The newest good backup is {report['backup']} ({records(int(report['records']))}, "
            f"{kind}, {_hours(report['age_seconds'])} old)"
        )
    if args.max_age_seconds is None:
        verdict = "no schedule interval was given, so none is stale"
    elif report["scheduled_backup"] is None:
        verdict = "stale: there is no good scheduled backup"
    else:
        limit = 2 * args.max_age_seconds
        verdict = (
            f"the newest good scheduled one is {_hours(report['scheduled_age_seconds'])} old, "
            + (
                f"stale: older than {_hours(limit)}"
                if report["stale"]
                else f"within {_hours(limit)}"
            )
        )
    # The log record's own "created" is its time: the backup's goes as "cut", as for dump.
    fields = {key: value for key, value in report.items() if key != "created"}
    _done(f"{newest}; {verdict}.", cut=report["created"], **fields)


def _fail(command: str, reason: str, clause: str, **fields: object) -> int:
    log.error(
        f"{NOTHING_DONE[command]}: {clause}.",
        extra={"result": "failed" if reason in FAILURES else "refused", "reason": reason, **fields},
    )
    return 1


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise archive.Terminated


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    args = _parser().parse_args(argv)
    level = (env.get("LOG_LEVEL", "").strip() or "INFO").upper()
    configure_logging(level if level in LOG_LEVELS else "INFO")
    signal.signal(signal.SIGTERM, _terminate)
    directory = args.dir or Path(env.get("BACKUP_DIR", "").strip() or DEFAULT_DIR)
    runners: dict[str, Callable[..., None]] = {
        "dump": lambda settings: _run_dump(args, directory, settings),
        "restore": lambda settings: _run_restore(args, directory, settings),
        "recover": _run_recover,
        "drill": lambda settings: _run_drill(args, directory, settings),
        "verify": lambda: _run_verify(args, directory),
        "list": lambda: _run_list(directory),
        "prune": lambda: _run_prune(args, directory),
        "status": lambda: _run_status(args, directory),
    }
    try:
        if args.command in DATABASE_COMMANDS:
            runners[args.command](load_settings(env))
        else:
            runners[args.command]()
    except ConfigError as exc:
        print(f"{PROG}: configuration error: {exc}", file=sys.stderr)
        return 2
    except RetentionRefused:
        return RETENTION_STATUS
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
    except archive.Terminated:
        return _fail(args.command, "terminated", "the process was stopped by a signal")
    except Exception as exc:
        log.exception(
            f"{NOTHING_DONE[args.command]}: an unexpected {type(exc).__name__} occurred.",
            extra={"result": "failed", "reason": "internal"},
        )
        return 1
    return 0
