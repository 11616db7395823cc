"""Jinja filters over Kubernetes manifests.

{{ query('ansible.builtin.template', 'service.yaml.j2') | k8s_identities }}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import yaml


def k8s_identities(texts: Iterable[str] | str) -> list[dict[str, str]]:
    """The api_version, kind, name and namespace of every object in YAML manifests.

    Takes one text or a list of texts, each with one or more documents; empty documents are
    skipped. Only the identity is returned, never the content (a Secret's data stays out).
    """
    if isinstance(texts, str):
        texts = [texts]
    identities = []
    for text in texts:
        for document in yaml.safe_load_all(text):
            if not document:
                continue
            metadata = document.get("metadata") or {}
            identity = {
                "api_version": str(document["apiVersion"]),
                "kind": str(document["kind"]),
                "name": str(metadata["name"]),
            }
            if metadata.get("namespace"):
                identity["namespace"] = str(metadata["namespace"])
            identities.append(identity)
    return identities


class FilterModule:
    def filters(self) -> dict[str, Callable[..., object]]:
        return {"k8s_identities": k8s_identities}
