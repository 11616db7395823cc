"""API keys: who may call /data and with which scope; sources that keep failing get 429.

A client sends ``Authorization: Bearer <key>``. The service knows only the SHA-256 of each key
(APP_API_KEYS): it hashes the presented key once and compares the digest with every stored one
in constant time, without stopping at a match, so the answer's timing says nothing about which
key matched or where. A ``write`` key may also read.

Failed attempts (no key, a malformed header, an unknown key) are counted per source address
(flaskapp.limits.FailureTable, shared by the workers): after APP_AUTH_MAX_FAILURES failures
within APP_AUTH_FAILURE_WINDOW_SECONDS, further attempts from that source without a valid key
are answered 429 until the window ends. A request with a valid key never consults the count,
so clients behind one address (NodePort traffic arrives from the node) are served however many
strangers share it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from typing import NoReturn

from .config import ApiKey
from .errors import ApiError
from .limits import FailureTable

log = logging.getLogger(__name__)

# "Bearer", then the key: visible ASCII without spaces, at most 1024 characters.
_BEARER = re.compile(r"^[Bb][Ee][Aa][Rr][Ee][Rr] +([\x21-\x7e]{1,1024}) *$")
CHALLENGE = {"WWW-Authenticate": "Bearer"}


class KeyRing:
    """The keys the service accepts, by the SHA-256 of each."""

    def __init__(self, keys: tuple[ApiKey, ...]) -> None:
        self._entries = [(bytes.fromhex(key.sha256), key) for key in keys]

    def __len__(self) -> int:
        return len(self._entries)

    def match(self, presented: str) -> ApiKey | None:
        """The key whose hash is the presented key's, comparing with every stored hash."""
        digest = hashlib.sha256(presented.encode("utf-8")).digest()
        found: ApiKey | None = None
        for stored, key in self._entries:
            if hmac.compare_digest(digest, stored):
                found = key
        return found


class Guard:
    """Decides whether a request to /data may go on: returns the key, or raises ApiError."""

    def __init__(self, keys: KeyRing, failures: FailureTable) -> None:
        self.keys = keys
        self.failures = failures

    def check(self, authorization: str | None, source: str, write: bool) -> ApiKey:
        if authorization is None:
            self._refuse(
                source,
                "missing_api_key",
                "An API key is required: send it as 'Authorization: Bearer <key>'.",
            )
        found = _BEARER.match(authorization)
        if found is None:
            self._refuse(
                source, "invalid_api_key", "The Authorization header must be 'Bearer <key>'."
            )
        key = self.keys.match(found.group(1))
        if key is None:
            self._refuse(source, "invalid_api_key", "The API key is not valid.")
        if write and not key.can_write:
            raise ApiError(
                403,
                "insufficient_scope",
                f"The key {key.name!r} may only read; this request needs a write key.",
            )
        return key

    def _refuse(self, source: str, code: str, message: str) -> NoReturn:
        retry_after, first = self.failures.record(source)
        if retry_after is None:
            raise ApiError(401, code, message, CHALLENGE)
        if first:
            log.warning(
                "too many failed attempts: answering 429 to this source until its window ends",
                extra={"remote": source, "retry_after": retry_after, "limit": self.failures.limit},
            )
        raise ApiError(
            429,
            "too_many_failures",
            f"More than {self.failures.limit} failed attempts from this address within "
            f"{self.failures.window:g} s; retry later with a valid key.",
            {"Retry-After": str(retry_after)},
        )
