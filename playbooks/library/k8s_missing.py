#!/usr/bin/python
"""Ansible module: which of a list of Kubernetes objects do not exist."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_missing
short_description: List the objects of a set that are missing from the cluster
description:
  - Reads each object of O(objects) by its API version, kind, namespace and name, in one
    process and one connection, and returns those the cluster does not have. The roles' fast
    paths use it so that a re-run that finds its fingerprint current still restores an object
    that was deleted by hand.
  - Reads only; never changes anything. The resource's path is derived from its kind (the
    lower-case plural), which holds for the kinds the project applies.
options:
  objects:
    description: The objects, each with C(api_version), C(kind), C(name) and, for a namespaced
      kind, C(namespace) (the filter k8s_identities makes them from manifests).
    type: list
    elements: dict
    required: true
  kubeconfig:
    description: Path of the kubeconfig file; the default loading rules apply when omitted.
    type: path
  context:
    description: Kubeconfig context to use; the current context when omitted.
    type: str
requirements: [kubernetes]
"""

EXAMPLES = r"""
- name: Find the service's objects that were deleted
  k8s_missing:
    objects: "{{ query('ansible.builtin.template', 'service.yaml.j2') | k8s_identities }}"
    kubeconfig: /var/lib/flask-k8s/cluster/admin.kubeconfig
  register: missing
"""

RETURN = r"""
missing:
  description: The objects that do not exist, as Kind/name (Kind/namespace/name when namespaced).
  type: list
  elements: str
  returned: always
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    from kubernetes import config
    from kubernetes.client import ApiClient
except ImportError:
    HAS_KUBERNETES = False
else:
    HAS_KUBERNETES = True


def resource_path(obj: dict[str, Any]) -> str:
    """The REST path of one object, e.g. /apis/apps/v1/namespaces/ns/deployments/web."""
    kind = str(obj["kind"]).lower()
    if kind.endswith("y"):
        plural = kind[:-1] + "ies"
    elif kind.endswith("s"):
        plural = kind + "es"
    else:
        plural = kind + "s"
    api_version = str(obj["api_version"])
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    namespace = obj.get("namespace") or ""
    scope = f"/namespaces/{namespace}" if namespace else ""
    return f"{prefix}{scope}/{plural}/{obj['name']}"


def label(obj: dict[str, Any]) -> str:
    namespace = obj.get("namespace") or ""
    return "/".join(part for part in (str(obj["kind"]), namespace, str(obj["name"])) if part)


def read_status(api: ApiClient, path: str) -> tuple[int, str]:
    """The HTTP status of a GET of path, with the kubeconfig's credentials."""
    method, url, headers, body, post_params = api.param_serialize(
        method="GET", resource_path=path, auth_settings=["BearerToken"]
    )
    response = api.call_api(method, url, header_params=headers, body=body, post_params=post_params)
    response.read()
    return response.status, str(response.reason)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "objects": {"type": "list", "elements": "dict", "required": True},
            "kubeconfig": {"type": "path"},
            "context": {"type": "str"},
        },
        supports_check_mode=True,
    )
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"))
    params = module.params
    api = config.new_client_from_config(config_file=params["kubeconfig"], context=params["context"])
    missing = []
    with api:
        for obj in params["objects"]:
            status, reason = read_status(api, resource_path(obj))
            if status == 404:
                missing.append(label(obj))
            elif not 200 <= status < 300:
                module.fail_json(msg=f"Reading {label(obj)} failed: {status} {reason}")
    module.exit_json(changed=False, missing=missing)


if __name__ == "__main__":
    main()
