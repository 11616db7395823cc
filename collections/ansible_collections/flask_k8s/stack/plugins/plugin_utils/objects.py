"""Fields and conditions of the Kubernetes objects the API server returns, read without
assuming any of them is there: the Jinja tests and filters over objects share these."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The annotation in which a role records the fingerprint of the manifests it last applied.
FINGERPRINT_ANNOTATION = "flask-k8s.io/fingerprint"


def field(obj: object, *path: str) -> Any:  # noqa: ANN401 - any field of a Kubernetes object
    """The field at `path` (keys, outermost first), None when any step is missing or not a
    mapping."""
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def has_condition(obj: object, kind: str) -> bool:
    """Whether the object's status has a condition of type `kind` whose status is 'True'."""
    conditions = field(obj, "status", "conditions")
    return isinstance(conditions, list) and any(
        isinstance(condition, Mapping)
        and condition.get("type") == kind
        and condition.get("status") == "True"
        for condition in conditions
    )
