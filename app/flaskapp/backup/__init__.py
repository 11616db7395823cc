"""Backups of the records collection: ``python -m flaskapp.backup dump|restore|verify|list|prune``.

    python -m flaskapp.backup dump [--dir DIR] [--keep N]
    python -m flaskapp.backup restore NAME|latest [--replace] [--dir DIR]
    python -m flaskapp.backup verify NAME|latest [--dir DIR]
    python -m flaskapp.backup list [--dir DIR]
    python -m flaskapp.backup prune --keep N [--dir DIR]

The database and its credentials come from the environment the service reads
(``flaskapp.config``: MONGODB_URI, or MONGODB_HOST, MONGODB_PORT, MONGODB_USERNAME,
MONGODB_PASSWORD, MONGODB_AUTH_SOURCE; MONGODB_DATABASE, MONGODB_TIMEOUT_MS), never from
arguments; no credential reaches a log line or a backup. DIR defaults to $BACKUP_DIR, else
/backups. Every line on stderr is a JSON log record; the last one says what was done, or why
nothing was, in one sentence (``message``), with ``result`` (done, refused or failed) and for
a refusal or failure a ``reason`` (damaged, not_found, not_empty, changed, usage, database,
io). ``list`` prints one JSON object a backup on stdout, newest first. Exit status: 0 done,
1 refused or failed, 2 bad usage or configuration.

The file format is in ``archive``, names and pruning in ``catalog``, what a dump holds in
``dump``, how a restore replaces the collection in ``restore``.
"""
