"""Lookup plugin: the kubeconfig file a cluster's context is written to and read from.

    {{ lookup('flask_k8s.stack.kubeconfig') }}

The first entry of $KUBECONFIG that is not empty, else ~/.kube/config: the file minikube
writes its context to, and the one the minikube and existing_cluster roles read by default.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: kubeconfig
short_description: The kubeconfig file a cluster's context is written to
description:
  - Returns the first entry of C($KUBECONFIG) that is not empty (entries are separated by
    C(:)), else C(~/.kube/config) with C(~) the home directory of C($HOME). minikube writes
    its context to this file.
author: flask-k8s maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Show which kubeconfig the roles use by default
  ansible.builtin.debug:
    msg: "{{ lookup('flask_k8s.stack.kubeconfig') }}"
"""

RETURN = r"""
_raw:
  description: The path of the kubeconfig file.
  type: list
  elements: str
"""

import os
from collections.abc import Mapping

from ansible.plugins.lookup import LookupBase


def kubeconfig(environ: Mapping[str, str]) -> str:
    """The kubeconfig file given the environment `environ`."""
    for entry in environ.get("KUBECONFIG", "").split(os.pathsep):
        if entry:
            return entry
    home = environ.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, ".kube", "config")


class LookupModule(LookupBase):
    def run(
        self, terms: list[object], variables: dict | None = None, **kwargs: object
    ) -> list[str]:
        self.set_options(var_options=variables, direct=kwargs)
        return [kubeconfig(os.environ)]
