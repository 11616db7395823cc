"""Jinja filters over Kubernetes manifests, and the labels every object of the project carries.

{{ query('ansible.builtin.template', 'service.yaml.j2') | flask_k8s.stack.k8s_manifests }}
{{ mongodb_selector_labels | flask_k8s.stack.k8s_labels('database') }}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import yaml
from ansible.errors import AnsibleFilterError

# The labels that say an object belongs to the project and who manages it.
PROJECT_LABELS = {
    "app.kubernetes.io/part-of": "flask-k8s",
    "app.kubernetes.io/managed-by": "ansible",
}


def k8s_manifests(texts: Iterable[str] | str) -> list[dict[str, Any]]:
    """Every object of YAML manifests, as a list; takes one text or a list of texts, each with
    one or more documents, and skips empty documents."""
    if isinstance(texts, str):
        texts = [texts]
    return [document for text in texts for document in yaml.safe_load_all(text) if document]


def k8s_labels(selector: Mapping[str, str], component: str = "") -> dict[str, str]:
    """The labels of a component's objects: its selector labels (name, instance), its
    app.kubernetes.io/component when given, and the project's labels."""
    if not isinstance(selector, Mapping):
        raise AnsibleFilterError(f"k8s_labels takes a map of selector labels, got {selector!r}")
    component_label = {"app.kubernetes.io/component": component} if component else {}
    return {**selector, **component_label, **PROJECT_LABELS}


class FilterModule:
    def filters(self) -> dict[str, Callable[..., object]]:
        return {"k8s_manifests": k8s_manifests, "k8s_labels": k8s_labels}
