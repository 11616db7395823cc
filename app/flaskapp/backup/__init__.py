"""Backups of the records collection: ``python -m flaskapp.backup COMMAND``.

    python -m flaskapp.backup dump [--keep N] [--min-ratio R] [--scheduled] [--dir DIR]
    python -m flaskapp.backup restore NAME|latest [--replace] [--recovery-seconds S] [--dir DIR]
    python -m flaskapp.backup recover
    python -m flaskapp.backup drill [--name NAME|latest] [--match JSON] [--dir DIR]
    python -m flaskapp.backup verify NAME|latest|--all [--dir DIR]
    python -m flaskapp.backup list [--dir DIR]
    python -m flaskapp.backup prune --keep N [--min-ratio R] [--dir DIR]
    python -m flaskapp.backup status [--max-age-seconds S] [--dir DIR]

The database and its credentials come from the environment the service reads
(``flaskapp.config``: MONGODB_URI, or MONGODB_HOST, MONGODB_PORT, MONGODB_USERNAME,
MONGODB_PASSWORD, MONGODB_AUTH_SOURCE; MONGODB_DATABASE, MONGODB_TIMEOUT_MS), never from
arguments; no credential reaches a log line or a backup. DIR defaults to $BACKUP_DIR, else
/backups. Every line on stderr is a JSON log record; the last one says what was done, or why
nothing was, in one sentence (``message``), with ``result`` (done, refused or failed) and for
a refusal or failure a ``reason`` (damaged, not_found, not_empty, changed, busy, retention,
no_space, usage, database, io, terminated). ``list``, ``verify --all``, ``drill`` and
``status`` print JSON lines on stdout. Exit status: 0 done, 1 refused or failed, 2 bad usage
or configuration, 3 refused by the retention rules (``dump --keep`` has written its backup).

The file format is in ``archive``, names in ``catalog``, what a dump holds in ``dump``, the
retention rules and the space check in ``retention``, how a restore replaces the collection
in ``restore``, the drill in ``drill``, verification of every backup and the status in
``health``.
"""
