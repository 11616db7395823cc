"""Paths given relative to a directory the project owns, as its lookups take them."""

from __future__ import annotations

import os

from ansible.errors import AnsibleLookupError


def inside(lookup: str, root: str, place: str, term: object) -> str:
    """The normalised path of `term` below `root`: a non-empty string, relative, that does not
    leave `root`. Else AnsibleLookupError naming `lookup` and `place` ("the cache directory")."""
    if not isinstance(term, str) or not term.strip():
        raise AnsibleLookupError(
            f"{lookup}: each path must be a non-empty string relative to {place}, got {term!r}."
        )
    if os.path.isabs(term):
        raise AnsibleLookupError(
            f"{lookup}: {term} is absolute; give a path relative to {place} ({root})."
        )
    path = os.path.normpath(os.path.join(root, term))
    if path != root and not path.startswith(root.rstrip(os.sep) + os.sep):
        raise AnsibleLookupError(
            f"{lookup}: {term} leaves {place} ({root}); give a path inside it."
        )
    return path
