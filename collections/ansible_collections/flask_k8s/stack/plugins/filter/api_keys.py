"""Jinja filters over the service's API keys: a list of {name, scope, key}, as the vault holds it.

{{ keys | api_key_problems('flaskapp_api_keys', 32) }}   one sentence for each problem
{{ keys | api_keys_json }}                                 APP_API_KEYS: the hashes, no key

No sentence and no output ever carries a key: a problem names the entry by its position and its
name.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable

# The contract of APP_API_KEYS: names, scopes, and the hash of the UTF-8 key.
NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
SCOPES = ("read", "write")
FIELDS = ("name", "scope", "key")
# What a client can send after `Authorization: Bearer ` (RFC 6750's b64token).
KEY = re.compile(r"[A-Za-z0-9._~+/-]+=*")


def _entry(index: int, entry: object) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    return f"entry {index + 1}" + (f" ({name!s})" if isinstance(name, str) and name else "")


def _entry_problems(source: str, index: int, entry: object, min_length: int) -> list[str]:
    where = f"{source} {_entry(index, entry)}"
    if not isinstance(entry, dict):
        return [f"{where} must be a mapping with name, scope and key."]
    problems = []
    extra = sorted(str(field) for field in entry if field not in FIELDS)
    if extra:
        problems.append(f"{where} has fields other than name, scope and key: {', '.join(extra)}.")
    name = entry.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        problems.append(
            f"{where} needs a name of 1-64 letters, digits, '.', '_' or '-', got {name!r}."
        )
    scope = entry.get("scope")
    if scope not in SCOPES:
        problems.append(f"{where} needs a scope of read or write, got {scope!r}.")
    key = entry.get("key")
    if not isinstance(key, str) or len(key) < min_length:
        problems.append(
            f"{where} needs a key of at least {min_length} characters "
            f"(`make setup` makes 43 with secrets.token_urlsafe(32))."
        )
    elif not KEY.fullmatch(key):
        problems.append(
            f"{where} has a key with characters a client cannot send in an Authorization "
            "header: use letters, digits and '-._~+/' (and '=' at the end)."
        )
    return problems


def api_key_problems(keys: object, source: str, min_length: int) -> list[str]:
    """One sentence for each thing wrong with `keys` (the variable named `source`)."""
    if not isinstance(keys, list):
        return [f"{source} must be a list of entries with name, scope and key."]
    problems = []
    for index, entry in enumerate(keys):
        problems += _entry_problems(source, index, entry, int(min_length))
    entries = [entry for entry in keys if isinstance(entry, dict)]
    names = Counter(entry["name"] for entry in entries if isinstance(entry.get("name"), str))
    repeated = sorted(name for name, count in names.items() if count > 1)
    if repeated:
        problems.append(f"{source} names {', '.join(repeated)} more than once: names are unique.")
    by_key: dict[str, list[str]] = {}
    for index, entry in enumerate(keys):
        if isinstance(entry, dict) and isinstance(entry.get("key"), str):
            by_key.setdefault(entry["key"], []).append(_entry(index, entry))
    for holders in by_key.values():
        if len(holders) > 1:
            problems.append(
                f"{source} {' and '.join(holders)} have the same key: give each its own."
            )
    return problems


def api_keys_json(keys: list[dict[str, str]]) -> str:
    """APP_API_KEYS: the entries with the SHA-256 of each key in place of the key."""
    return json.dumps(
        [
            {
                "name": entry["name"],
                "scope": entry["scope"],
                "sha256": hashlib.sha256(entry["key"].encode("utf-8")).hexdigest(),
            }
            for entry in keys
        ],
        separators=(",", ":"),
    )


class FilterModule:
    def filters(self) -> dict[str, Callable[..., object]]:
        return {"api_key_problems": api_key_problems, "api_keys_json": api_keys_json}
