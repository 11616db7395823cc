"""Jinja filters over Kubernetes manifests, and the labels every object of the project carries.

{{ query('ansible.builtin.template', 'service.yaml.j2') | flask_k8s.stack.k8s_manifests }}
{{ mongodb_selector_labels | flask_k8s.stack.k8s_labels('database') }}
{{ ['localhost', '127.0.0.1'] | flask_k8s.stack.k8s_subject_alt_names('flask-service', 'flask') }}
"""

from __future__ import annotations

import ipaddress
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


def k8s_subject_alt_names(
    hosts: Iterable[str], service: str = "", namespace: str = ""
) -> list[str]:
    """The subjectAltName entries of a server certificate: each host (an IP address as IP:,
    anything else as DNS:; empty ones skipped), then, given a Service and its namespace, the
    names the cluster's DNS gives the Service. Each entry once, in that order."""
    if isinstance(hosts, str) or not isinstance(hosts, Iterable):
        raise AnsibleFilterError(f"k8s_subject_alt_names takes a list of hosts, got {hosts!r}")
    names = [str(host) for host in hosts if host]
    if service:
        names += [
            service,
            f"{service}.{namespace}",
            f"{service}.{namespace}.svc",
            f"{service}.{namespace}.svc.cluster.local",
        ]
    entries = [f"{'IP' if _is_ip(name) else 'DNS'}:{name}" for name in names]
    return list(dict.fromkeys(entries))


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class FilterModule:
    def filters(self) -> dict[str, Callable[..., object]]:
        return {
            "k8s_manifests": k8s_manifests,
            "k8s_labels": k8s_labels,
            "k8s_subject_alt_names": k8s_subject_alt_names,
        }
