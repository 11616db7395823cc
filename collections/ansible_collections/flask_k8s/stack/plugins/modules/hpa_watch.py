#!/usr/bin/python
"""Ansible module: sample a HorizontalPodAutoscaler until a condition holds."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: hpa_watch
short_description: Sample an autoscaling/v2 HorizontalPodAutoscaler over time
description:
  - Every O(interval) seconds, reads the HorizontalPodAutoscaler O(name) and its target
    Deployment, and records the time, the replicas the Deployment asks for (what the
    autoscaler last set), how many of its pods are ready, the autoscaler's desired count and
    the measured average CPU utilisation (null while the metrics API has no figure). Replicas
    and ready pods come from the Deployment read at that moment, so the two always agree in
    time; the autoscaler's own status lags by up to its sync period.
  - Stops when the condition O(until) holds and O(min_duration) has passed, or after
    O(timeout) seconds. It never fails because the condition was not met; it returns
    RV(reached) and the samples, so the caller can report before it asserts.
options:
  name:
    description: Name of the HorizontalPodAutoscaler.
    type: str
    required: true
  namespace:
    description: Namespace of the HorizontalPodAutoscaler.
    type: str
    required: true
  until:
    description:
      - C(at_rest) waits for a known CPU figure with O(replicas) replicas, all of them ready.
      - C(scaled) waits for at least O(replicas) ready pods.
      - C(at_min) waits for exactly O(replicas) replicas, all of them ready (after a scale-down).
    type: str
    choices: [at_rest, scaled, at_min]
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
    description: Keep sampling until at least this many seconds after O(origin), even once the
      condition holds.
    type: int
    default: 0
  origin:
    description: Time (seconds since the epoch) the samples' C(t) counts from, so that several
      calls share one time axis; the module's start when omitted.
    type: float
extends_documentation_fragment:
  - flask_k8s.stack.kubeconfig
author: flask-k8s maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Sample the autoscaler until it has scaled to three replicas
  flask_k8s.stack.hpa_watch:
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
  description: Seconds from O(origin) to the first sample where the condition held.
  type: float
  returned: when reached
samples:
  description: One entry a sample, with keys t, current_replicas (the Deployment's
    spec.replicas), desired_replicas (the autoscaler's), ready_replicas and cpu_percent.
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
    origin: float,
) -> dict[str, Any]:
    hpa = api.read_namespaced_horizontal_pod_autoscaler(name, namespace)
    target = hpa.spec.scale_target_ref
    replicas = hpa.status.current_replicas or 0
    ready = None
    if target.kind == "Deployment":
        deployment = apps.read_namespaced_deployment(target.name, namespace)
        replicas = deployment.spec.replicas or 0
        ready = deployment.status.ready_replicas or 0
    return {
        "t": round(time.time() - origin, 1),
        "current_replicas": replicas,
        "desired_replicas": hpa.status.desired_replicas or 0,
        "ready_replicas": ready,
        "cpu_percent": _cpu_percent(hpa.status),
    }


def _holds(sample: dict[str, Any], until: str, replicas: int) -> bool:
    ready = sample["ready_replicas"]
    ready = sample["current_replicas"] if ready is None else ready
    if until == "at_rest":
        return (
            sample["cpu_percent"] is not None
            and sample["current_replicas"] == replicas
            and ready == replicas
        )
    if until == "at_min":
        return sample["current_replicas"] == replicas and ready == replicas
    return ready >= replicas


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "namespace": {"type": "str", "required": True},
            "kubeconfig": {"type": "path"},
            "context": {"type": "str"},
            "until": {
                "type": "str",
                "required": True,
                "choices": ["at_rest", "scaled", "at_min"],
            },
            "replicas": {"type": "int", "required": True},
            "interval": {"type": "int", "default": 5},
            "timeout": {"type": "int", "default": 300},
            "min_duration": {"type": "int", "default": 0},
            "origin": {"type": "float"},
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
    started = time.time()
    origin = params["origin"] if params["origin"] is not None else started
    samples: list[dict[str, Any]] = []
    reached_at: float | None = None
    while True:
        try:
            sample = _sample(api, apps, params["name"], params["namespace"], origin)
        except ApiException as error:
            module.fail_json(
                msg=f"Cannot read HorizontalPodAutoscaler {params['namespace']}/"
                f"{params['name']}: {error.status} {error.reason}",
                samples=samples,
            )
        samples.append(sample)
        if reached_at is None and _holds(sample, params["until"], params["replicas"]):
            reached_at = sample["t"]
        if reached_at is not None and time.time() - origin >= params["min_duration"]:
            break
        if time.time() - started + params["interval"] > params["timeout"]:
            break
        time.sleep(params["interval"])

    result: dict[str, Any] = {"changed": False, "reached": reached_at is not None}
    if reached_at is not None:
        result["seconds_to_reach"] = reached_at
    module.exit_json(samples=samples, **result)


if __name__ == "__main__":
    main()
