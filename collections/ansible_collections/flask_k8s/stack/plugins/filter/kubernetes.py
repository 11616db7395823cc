"""Jinja filters over Kubernetes manifests.

{{ query('ansible.builtin.template', 'service.yaml.j2') | k8s_manifests }}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import yaml


def k8s_manifests(texts: Iterable[str] | str) -> list[dict[str, Any]]:
    """Every object of YAML manifests, as a list; takes one text or a list of texts, each with
    one or more documents, and skips empty documents."""
    if isinstance(texts, str):
        texts = [texts]
    return [document for text in texts for document in yaml.safe_load_all(text) if document]


class FilterModule:
    def filters(self) -> dict[str, Callable[..., object]]:
        return {"k8s_manifests": k8s_manifests}
