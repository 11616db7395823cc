#!/usr/bin/python
"""Ansible module: sample a HorizontalPodAutoscaler until a condition holds."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: hpa_watch
short_description: Sample an autoscaling/v2 HorizontalPodAutoscaler over time
description:
  - Every O(interval) seconds, reads the HorizontalPodAutoscaler O(name) and records the
    elapsed time, the current and desired replica counts, the ready replicas of its target
    and the measured average CPU utilisation (null while the metrics API has no figure).
  - Stops when the condition O(until) holds and O(min_duration) has passed, or after
    O(timeout) seconds. It never fails because the condition was not met; it returns
    O(reached) and the samples, so the caller can report before it asserts.
options:
  name:
    description: Name of the HorizontalPodAutoscaler.
    type: str
    required: true
  namespace:
    description: Namespace of the HorizontalPodAutoscaler.
    type: str
    required: true
  kubeconfig:
    description: Path of the kubeconfig file; the default loading rules apply when omitted.
    type: path
  context:
    description: Kubeconfig context to use; the current context when omitted.
    type: str
  until:
    description:
      - C(at_rest) waits for a known CPU figure with the replica count equal to O(replicas).
      - C(scaled) waits for at least O(replicas) current replicas.
    type: str
    choices: [at_rest, scaled]
    required: true
  replicas:
    description: Replica count the condition compares against.
    type: int
    required: true
  interval:
    description: Seconds between samples.
    type: int
    default: 5
  timeout:
    description: Seconds after which sampling stops whether or not the condition held.
    type: int
    default: 300
  min_duration:
    description: Keep sampling at least this many seconds, even once the condition holds.
    type: int
    default: 0
author: flask-k8s maintainers
"""

EXAMPLES = r"""
- name: Sample the autoscaler until it has scaled to three replicas
  hpa_watch:
    name: flask-app
    namespace: flask-mongodb
    until: scaled
    replicas: 3
    timeout: 300
  register: scaling
"""

RETURN = r"""
reached:
  description: Whether the condition held before the timeout.
  type: bool
  returned: always
seconds_to_reach:
  description: Seconds from the first sample to the first one where the condition held.
  type: float
  returned: when reached
samples:
  description: One entry a sample, with keys t, current_replicas, desired_replicas,
    ready_replicas and cpu_percent.
  type: list
  elements: dict
  returned: always
"""

import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    HAS_KUBERNETES = True
except ImportError:
    HAS_KUBERNETES = False


def _cpu_percent(status: client.V2HorizontalPodAutoscalerStatus) -> int | None:
    for metric in status.current_metrics or []:
        resource = metric.resource
        if metric.type == "Resource" and resource is not None and resource.name == "cpu":
            return resource.current.average_utilization
    return None


def _sample(
    api: client.AutoscalingV2Api,
    apps: client.AppsV1Api,
    name: str,
    namespace: str,
    started: float,
) -> dict[str, Any]:
    hpa = api.read_namespaced_horizontal_pod_autoscaler(name, namespace)
    target = hpa.spec.scale_target_ref
    ready = None
    if target.kind == "Deployment":
        deployment = apps.read_namespaced_deployment(target.name, namespace)
        ready = deployment.status.ready_replicas or 0
    return {
        "t": round(time.monotonic() - started, 1),
        "current_replicas": hpa.status.current_replicas or 0,
        "desired_replicas": hpa.status.desired_replicas or 0,
        "ready_replicas": ready,
        "cpu_percent": _cpu_percent(hpa.status),
    }


def _holds(sample: dict[str, Any], until: str, replicas: int) -> bool:
    if until == "at_rest":
        return sample["cpu_percent"] is not None and sample["current_replicas"] == replicas
    return sample["current_replicas"] >= replicas


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "namespace": {"type": "str", "required": True},
            "kubeconfig": {"type": "path"},
            "context": {"type": "str"},
            "until": {"type": "str", "required": True, "choices": ["at_rest", "scaled"]},
            "replicas": {"type": "int", "required": True},
            "interval": {"type": "int", "default": 5},
            "timeout": {"type": "int", "default": 300},
            "min_duration": {"type": "int", "default": 0},
        },
        supports_check_mode=True,
    )
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"))
    params = module.params
    if params["interval"] < 1 or params["timeout"] < params["interval"]:
        module.fail_json(msg="interval must be at least 1 and timeout at least interval")

    config.load_kube_config(config_file=params["kubeconfig"], context=params["context"])
    api = client.AutoscalingV2Api()
    apps = client.AppsV1Api()
    started = time.monotonic()
    samples: list[dict[str, Any]] = []
    reached_at: float | None = None
    while True:
        try:
            sample = _sample(api, apps, params["name"], params["namespace"], started)
        except ApiException as error:
            module.fail_json(
                msg=f"Cannot read HorizontalPodAutoscaler {params['namespace']}/"
                f"{params['name']}: {error.status} {error.reason}",
                samples=samples,
            )
        samples.append(sample)
        if reached_at is None and _holds(sample, params["until"], params["replicas"]):
            reached_at = sample["t"]
        elapsed = time.monotonic() - started
        if reached_at is not None and elapsed >= params["min_duration"]:
            break
        if elapsed + params["interval"] > params["timeout"]:
            break
        time.sleep(params["interval"])

    result: dict[str, Any] = {"changed": False, "reached": reached_at is not None}
    if reached_at is not None:
        result["seconds_to_reach"] = reached_at
    module.exit_json(samples=samples, **result)


if __name__ == "__main__":
    main()
