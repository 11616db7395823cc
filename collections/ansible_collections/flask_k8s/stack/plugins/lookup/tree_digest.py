"""Lookup plugin: one SHA-256 over the names and contents of files and directory trees.

    {{ lookup('flask_k8s.stack.tree_digest', 'app', 'Dockerfile',
              root=project_dir, exclude=['__pycache__']) }}

Directories are walked recursively; each file contributes its path relative to ``root`` and its
content, in sorted order, so the digest changes when a file is added, removed, renamed or
edited, and never because of the walk's order. A missing path contributes its name alone.
Parts of a path named in ``exclude`` (directory names or file suffixes) are skipped.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: tree_digest
short_description: SHA-256 over the names and contents of files and directory trees
description:
  - Returns one hex digest over every file under the given paths (relative to O(root)), in
    sorted order, with its relative path and content.
options:
  _terms:
    description: Files or directories, relative to O(root).
    required: true
  root:
    description: Directory the paths are relative to.
    type: path
    required: true
  exclude:
    description: Directory names and file suffixes to leave out.
    type: list
    elements: str
    default: []
author: flask-k8s maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Hash the files that go into the image
  ansible.builtin.set_fact:
    image_digest: >-
      {{ lookup('flask_k8s.stack.tree_digest', 'app', 'Dockerfile',
                root=playbook_dir ~ '/..', exclude=['__pycache__']) }}
"""

RETURN = r"""
_raw:
  description: One SHA-256 hex digest.
  type: list
  elements: str
"""

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase


def _files(root: Path, relative: str, exclude: tuple[str, ...]) -> Iterator[Path]:
    path = root / relative
    if path.is_file():
        yield path
        return
    for directory, subdirs, names in os.walk(path):
        subdirs[:] = [name for name in subdirs if name not in exclude]
        for name in names:
            if not name.endswith(exclude):
                yield Path(directory) / name


class LookupModule(LookupBase):
    def run(self, terms: list[str], variables: dict | None = None, **kwargs: object) -> list[str]:
        self.set_options(var_options=variables, direct=kwargs)
        root = Path(self.get_option("root"))
        exclude = tuple(self.get_option("exclude"))
        if not root.is_dir():
            raise AnsibleLookupError(f"tree_digest: root {root} is not a directory")
        digest = hashlib.sha256()
        for term in terms:
            found = sorted(_files(root, term, exclude))
            if not found:
                digest.update(f"missing {term}\0".encode())
            for path in found:
                digest.update(str(path.relative_to(root)).encode() + b"\0")
                digest.update(path.read_bytes() + b"\0")
        return [digest.hexdigest()]
