"""Jinja tests over the Kubernetes objects the API server returns (an object as read, {} when
there is none), for the decisions whether a role's objects are current.

{{ deployment is flask_k8s.stack.k8s_fingerprinted(fingerprint) }}
{{ deployment is flask_k8s.stack.k8s_observed }}
{{ deployment is flask_k8s.stack.k8s_scaled_below(3) }}
{{ daemonset is flask_k8s.stack.k8s_daemonset_ready }}
{{ deployment is flask_k8s.stack.k8s_deployment_settled(2) }}
{{ job is flask_k8s.stack.k8s_condition('Failed') }}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ansible_collections.flask_k8s.stack.plugins.plugin_utils.objects import (
    FINGERPRINT_ANNOTATION,
    has_condition,
)
from ansible_collections.flask_k8s.stack.plugins.plugin_utils.objects import field as _field


def _count(obj: object, *path: str) -> int:
    value = _field(obj, *path)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def k8s_fingerprinted(obj: object, fingerprint: str) -> bool:
    """Whether the object carries `fingerprint` in its fingerprint annotation."""
    annotation = _field(obj, "metadata", "annotations", FINGERPRINT_ANNOTATION)
    return isinstance(annotation, str) and annotation == fingerprint


def k8s_observed(obj: object) -> bool:
    """Whether the object's controller has seen its latest spec: an object with a generation
    whose status.observedGeneration has reached it."""
    generation = _field(obj, "metadata", "generation")
    return isinstance(generation, int) and _count(obj, "status", "observedGeneration") >= generation


def k8s_scaled_below(obj: object, minimum: object) -> bool:
    """Whether the object (a Deployment) asks for fewer replicas than `minimum`; spec.replicas
    left out means 1, as the API server defaults it. {} (no object) is not."""
    if not isinstance(obj, Mapping) or not obj:
        return False
    replicas = _field(obj, "spec", "replicas")
    return (replicas if isinstance(replicas, int) else 1) < int(str(minimum))


def k8s_daemonset_ready(obj: object) -> bool:
    """Whether a DaemonSet is scheduled on at least one node and every pod of it is updated and
    ready."""
    desired = _count(obj, "status", "desiredNumberScheduled")
    return (
        desired > 0
        and _count(obj, "status", "numberReady") == desired
        and _count(obj, "status", "updatedNumberScheduled") == desired
    )


def k8s_deployment_settled(obj: object, replicas: object) -> bool:
    """Whether a Deployment is settled: its spec observed, every replica updated and ready, and
    at least `replicas` of them. {} (no object) is not."""
    current = _count(obj, "status", "replicas")
    return (
        k8s_observed(obj)
        and current >= int(str(replicas))
        and _count(obj, "status", "updatedReplicas") == current
        and _count(obj, "status", "readyReplicas") == current
    )


def k8s_condition(obj: object, kind: str) -> bool:
    """Whether the object's status has a condition of type `kind` whose status is 'True' (a Job
    that failed has one of type Failed)."""
    return has_condition(obj, kind)


class TestModule:
    def tests(self) -> dict[str, Callable[..., bool]]:
        return {
            "k8s_fingerprinted": k8s_fingerprinted,
            "k8s_observed": k8s_observed,
            "k8s_scaled_below": k8s_scaled_below,
            "k8s_daemonset_ready": k8s_daemonset_ready,
            "k8s_deployment_settled": k8s_deployment_settled,
            "k8s_condition": k8s_condition,
        }
