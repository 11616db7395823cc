"""Lookup plugin: the project's cache directory, as cluster/build.sh finds it.

    {{ lookup('flask_k8s.stack.cache_dir') }}             the directory
    {{ lookup('flask_k8s.stack.cache_dir', 'stamps') }}   a path below it

cluster/build.sh, scripts/ferretdb.sh and scripts/minikube-cache.sh keep the binaries they build
in $FLASK_K8S_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/flask-k8s. The roles find the same
directory through this lookup, so that a binary `make binaries` built is the one a deploy finds.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: cache_dir
short_description: The project's cache directory, as its build scripts find it
description:
  - Returns the directory of the project's cache (built binaries, build contexts, the records
    of delivered images) the way C(cluster/build.sh) finds it on this host. C($FLASK_K8S_CACHE)
    when it is set and not empty, else C($XDG_CACHE_HOME/flask-k8s) when C($XDG_CACHE_HOME)
    is, else C(~/.cache/flask-k8s).
  - With terms, returns each term's path below that directory instead.
options:
  _terms:
    description:
      - Paths relative to the cache directory. Absolute paths and paths that leave the
        directory are refused.
    required: false
    type: list
    elements: str
author: flask-k8s maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Show where the built binaries are kept
  ansible.builtin.debug:
    msg: "{{ lookup('flask_k8s.stack.cache_dir', 'bin') }}"
"""

RETURN = r"""
_raw:
  description: The cache directory, or the path of each term below it, normalised.
  type: list
  elements: str
"""

import os
from collections.abc import Mapping

from ansible.plugins.lookup import LookupBase
from ansible_collections.flask_k8s.stack.plugins.plugin_utils.paths import inside


def cache_dir(environ: Mapping[str, str]) -> str:
    """The cache directory given the environment `environ`."""
    if environ.get("FLASK_K8S_CACHE"):
        return os.path.normpath(environ["FLASK_K8S_CACHE"])
    base = environ.get("XDG_CACHE_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".cache"
    )
    return os.path.normpath(os.path.join(base, "flask-k8s"))


def below(root: str, term: object) -> str:
    """The path of `term`, relative to `root`, below `root`."""
    return inside("cache_dir", root, "the cache directory", term)


class LookupModule(LookupBase):
    def run(
        self, terms: list[object], variables: dict | None = None, **kwargs: object
    ) -> list[str]:
        self.set_options(var_options=variables, direct=kwargs)
        root = cache_dir(os.environ)
        return [below(root, term) for term in terms] if terms else [root]
