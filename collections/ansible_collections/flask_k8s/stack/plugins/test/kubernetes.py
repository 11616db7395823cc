"""Jinja tests over Kubernetes objects as read from the API.

{{ flaskapp_deployment is flask_k8s.stack.k8s_deployment_settled(2) }}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping


def k8s_deployment_settled(deployment: object, replicas: int | str) -> bool:
    """Whether a Deployment (the object as read; {} or None when there is none) is settled: its
    spec observed, every replica updated and ready, and at least `replicas` of them."""
    if not isinstance(deployment, Mapping) or not deployment:
        return False
    status = deployment.get("status") or {}
    generation = (deployment.get("metadata") or {}).get("generation", 0)
    current = status.get("replicas", 0)
    return (
        status.get("observedGeneration", 0) >= generation
        and current >= int(replicas)
        and status.get("updatedReplicas", 0) == current
        and status.get("readyReplicas", 0) == current
    )


class TestModule:
    def tests(self) -> dict[str, Callable[..., bool]]:
        return {"k8s_deployment_settled": k8s_deployment_settled}
