"""The cluster options the collection's modules share, documented once."""

from __future__ import annotations


class ModuleDocFragment:
    """Options of a module that talks to the Kubernetes API."""

    DOCUMENTATION = r"""
options:
  kubeconfig:
    description: Path of the kubeconfig file; the default loading rules apply when omitted.
    type: path
  context:
    description: Kubeconfig context to use; the current context when omitted.
    type: str
"""
