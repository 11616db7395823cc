"""Lookup plugin: absolute paths of the project's files, found from this collection's location.

    {{ lookup('flask_k8s.stack.project_path', 'cluster/build.sh') }}

The collection lives in the project's checkout, at collections/ansible_collections/flask_k8s/
stack (ansible.cfg puts collections/ on the collections path), so the project's root is the
directory that holds collections/. The roles reach the repository's scripts, images and pins
through this lookup, whatever their own depth in the tree.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: project_path
short_description: Absolute paths of the project's files, from the collection's location
description:
  - Returns the absolute path of each term, relative to the root of the project's checkout,
    the directory that holds C(collections/ansible_collections/flask_k8s/stack), where this
    collection lives.
  - Fails when a path does not exist, or when the collection is not inside such a checkout.
options:
  _terms:
    description:
      - Paths relative to the project's root; C(.) is the root itself.
      - Absolute paths and paths that leave the root are refused.
    required: true
    type: list
    elements: str
author: flask-k8s maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Run the project's build script
  ansible.builtin.command:
    argv: ["{{ lookup('flask_k8s.stack.project_path', 'cluster/build.sh') }}", --status, all]
  changed_when: false

- name: Show the project's root
  ansible.builtin.debug:
    msg: "{{ lookup('flask_k8s.stack.project_path', '.') }}"
"""

RETURN = r"""
_raw:
  description: The absolute path of each term, normalised (no C(..), no trailing C(/)).
  type: list
  elements: str
"""

import os
from pathlib import Path

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.flask_k8s.stack.plugins.plugin_utils.paths import inside

# Where the collection lies below the project's root.
COLLECTION_DIR = Path("collections", "ansible_collections", "flask_k8s", "stack")


def project_root(plugin_file: str) -> Path:
    """The project's root, from the path of a file of this collection (this plugin's)."""
    path = Path(os.path.abspath(plugin_file))
    for parent in path.parents:
        if parent.name == "ansible_collections" and parent.parent.name == COLLECTION_DIR.parts[0]:
            root = parent.parent.parent
            if (root / COLLECTION_DIR).is_dir():
                return root
    raise AnsibleLookupError(
        f"project_path: the collection flask_k8s.stack at {path.parent} is not inside a checkout "
        f"of the project (under {COLLECTION_DIR}), so it knows no project's files."
    )


def project_path(root: Path, term: object) -> str:
    """The absolute path of `term`, a path relative to `root` that exists."""
    path = inside("project_path", str(root), "the project's root", term)
    if not os.path.exists(path):
        raise AnsibleLookupError(f"project_path: {term} does not exist in the project at {root}.")
    return path


class LookupModule(LookupBase):
    def run(
        self, terms: list[object], variables: dict | None = None, **kwargs: object
    ) -> list[str]:
        self.set_options(var_options=variables, direct=kwargs)
        root = project_root(__file__)
        return [project_path(root, term) for term in terms]
