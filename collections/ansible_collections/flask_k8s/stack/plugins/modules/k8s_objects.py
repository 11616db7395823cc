#!/usr/bin/python
"""Ansible module: read a set of Kubernetes objects in one call, say which are missing."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_objects
short_description: Read a set of objects; list those missing and those an apply would change
description:
  - Reads each object of O(objects) by its API version, kind, namespace and name, in one
    process and one connection. Returns the metadata and status of those the cluster has and
    names those it does not. The roles' fast paths use it, so that one call reads the object that
    carries a role's fingerprint and finds any object deleted by hand.
  - Reads only; never changes anything. Returns C(metadata) (without C(managedFields)),
    C(spec) and C(status), never C(data) or C(stringData), so that a Secret's or ConfigMap's
    content never reaches a registered result.
  - Given O(manifests) and O(field_manager), it also asks the API server what a server-side
    apply of each manifest by that field manager (with O(field_manager) taking over conflicting
    fields, as the roles' applies do) would change, without changing anything (a dry run), and
    names the fields that would change. An object edited by hand (an env var, a resource
    limit, a label, a rule) is so found; fields that the manifests do not set are not.
  - The resource's path is derived from its kind (the lower-case plural), which holds for the
    kinds the project applies.
  - A kubeconfig whose user is a client certificate or a bearer token, over HTTPS with no
    proxy, is read directly (the local cluster's and minikube's; the client key goes through a
    private temporary file, as Python's ssl loads keys from files only); any other (exec or
    auth-provider plugins, proxies, an omitted kubeconfig) goes through the kubernetes client.
options:
  objects:
    description: The objects, each with C(api_version), C(kind), C(name) and, for a namespaced
      kind, C(namespace).
      Required unless O(manifests) is given.
    type: list
    elements: dict
  manifests:
    description: The manifests a role applies. Their objects are read (as with O(objects)), and
      each one found is compared with the result of a dry-run server-side apply. Set C(no_log)
      on a task whose manifests hold a Secret.
    type: list
    elements: dict
  field_manager:
    description: The field manager of the dry-run apply; required with O(manifests).
    type: str
requirements: [kubernetes (for kubeconfigs not read directly)]
extends_documentation_fragment:
  - flask_k8s.stack.kubeconfig
author: flask-k8s maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Read the service's objects and find those changed by hand
  flask_k8s.stack.k8s_objects:
    manifests: >-
      {{ query('ansible.builtin.template', 'web.yaml.j2')
         | flask_k8s.stack.k8s_manifests }}
    field_manager: flask-k8s
    kubeconfig: /var/lib/flask-k8s/cluster/admin.kubeconfig
  register: service_objects
  no_log: true

- name: Use the Deployment's status
  ansible.builtin.debug:
    msg: "{{ service_objects.found['Deployment/web/flask-app'].status.readyReplicas | default(0) }}"
"""

RETURN = r"""
found:
  description: The objects that exist, keyed by Kind/name (Kind/namespace/name when
    namespaced), each with C(metadata) (without C(managedFields)), C(spec) and C(status) where
    the object has them.
  type: dict
  returned: always
drifted:
  description: The objects a server-side apply of O(manifests) would change, keyed as in
    C(found), each with the paths of the fields it would change (values are never returned).
  type: dict
  returned: always
missing:
  description: The objects that do not exist, as Kind/name (Kind/namespace/name when namespaced).
  type: list
  elements: str
  returned: always
"""

import base64
import http.client
import json
import os
import ssl
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import yaml

    HAS_YAML = True
except ImportError:
    HAS_YAML = False

# Sends a request (method, path, body or None) and returns (HTTP status, reason, body).
Reader = Callable[[str, str, "bytes | None"], tuple[int, str, bytes]]

# Content type of a server-side apply (JSON is YAML).
APPLY = "application/apply-patch+yaml"


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


def identity(manifest: dict[str, Any]) -> dict[str, Any]:
    """The api_version, kind, name and namespace of a manifest, as O(objects) takes them."""
    metadata = manifest.get("metadata") or {}
    return {"api_version": manifest.get("apiVersion"), "kind": manifest.get("kind"),
            "name": metadata.get("name"), "namespace": metadata.get("namespace")}  # fmt: skip


def apply_path(obj: dict[str, Any], field_manager: str) -> str:
    """The path of a dry-run server-side apply of one object by field_manager."""
    query = urlencode({"dryRun": "All", "fieldManager": field_manager, "force": "true"})
    return f"{resource_path(obj)}?{query}"


# Fields that change on every write or that an apply does not set: not compared.
IGNORED_METADATA = {"managedFields", "resourceVersion", "generation"}


def differences(live: object, applied: object, path: str = "") -> list[str]:
    """The paths (spec.template.spec.containers[0].env[1].value) at which two objects differ."""
    if isinstance(live, dict) and isinstance(applied, dict):
        found: list[str] = []
        for key in sorted(set(live) | set(applied)):
            if (path == "" and key == "status") or (path == "metadata" and key in IGNORED_METADATA):
                continue
            child = f"{path}.{key}" if path else str(key)
            if key not in live or key not in applied:
                found.append(child)
            else:
                found.extend(differences(live[key], applied[key], child))
        return found
    if isinstance(live, list) and isinstance(applied, list) and len(live) == len(applied):
        return [diff for index, (a, b) in enumerate(zip(live, applied, strict=True))
                for diff in differences(a, b, f"{path}[{index}]")]  # fmt: skip
    return [] if live == applied else [path]


def label(obj: dict[str, Any]) -> str:
    namespace = obj.get("namespace") or ""
    return "/".join(part for part in (str(obj["kind"]), namespace, str(obj["name"])) if part)


def summary(resource: dict[str, Any]) -> dict[str, Any]:
    """What a fast path may look at: metadata without managedFields, spec and status."""
    metadata = {k: v for k, v in (resource.get("metadata") or {}).items() if k != "managedFields"}
    kept = {k: resource[k] for k in ("spec", "status") if k in resource}
    return {"metadata": metadata, **kept}


def kubeconfig_entry(doc: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    for item in doc.get(section) or []:
        if item.get("name") == name:
            return item.get(section[:-1]) or {}
    raise ValueError(f"the kubeconfig has no {section[:-1]} named {name!r}")


def pem(entry: dict[str, Any], key: str, base: str) -> bytes | None:
    """The PEM bytes of a kubeconfig entry given as KEY-data (base64) or KEY (a file path)."""
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        with open(os.path.join(base, entry[key]), "rb") as handle:
            return handle.read()
    return None


@contextmanager
def direct_reader(kubeconfig: str, context: str | None) -> Iterator[Reader | None]:
    """A reader over one HTTPS connection, for a kubeconfig whose user is a client certificate
    or a bearer token (the local cluster's and minikube's). None for anything else (exec or
    auth-provider plugins, proxies): the kubernetes client handles those."""
    with open(kubeconfig, encoding="utf-8") as handle:
        doc = yaml.safe_load(handle) or {}
    base = os.path.dirname(os.path.abspath(kubeconfig))
    ctx = kubeconfig_entry(doc, "contexts", context or doc.get("current-context") or "")
    cluster = kubeconfig_entry(doc, "clusters", ctx.get("cluster", ""))
    user = kubeconfig_entry(doc, "users", ctx.get("user", ""))
    handled_user = {"client-certificate", "client-certificate-data", "client-key",
                    "client-key-data", "token"}  # fmt: skip
    handled_cluster = {"server", "certificate-authority", "certificate-authority-data",
                       "extensions"}  # fmt: skip
    server = urlsplit(str(cluster.get("server", "")))
    if set(user) - handled_user or set(cluster) - handled_cluster or server.scheme != "https":
        yield None
        return
    tls = ssl.create_default_context()
    ca = pem(cluster, "certificate-authority", base)
    if ca is not None:
        tls.load_verify_locations(cadata=ca.decode())
    headers: dict[str, str] = {"Accept": "application/json"}
    if user.get("token"):
        headers["Authorization"] = f"Bearer {user['token']}"
    cert, key = pem(user, "client-certificate", base), pem(user, "client-key", base)
    if cert is not None and key is not None:
        # ssl loads a client key from a file only: a private one, removed on leaving.
        with tempfile.TemporaryDirectory() as tmp:
            chain = os.path.join(tmp, "client.pem")
            with open(os.open(chain, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as handle:
                handle.write(cert.rstrip(b"\n") + b"\n" + key)
            tls.load_cert_chain(chain)
    connection = http.client.HTTPSConnection(
        server.hostname or "", server.port or 443, context=tls, timeout=30
    )
    prefix = server.path.rstrip("/")

    def read(method: str, path: str, body: bytes | None) -> tuple[int, str, bytes]:
        sent = headers if body is None else {**headers, "Content-Type": APPLY}
        connection.request(method, prefix + path, body=body, headers=sent)
        response = connection.getresponse()
        return response.status, response.reason, response.read()

    try:
        yield read
    finally:
        connection.close()


@contextmanager
def client_reader(kubeconfig: str | None, context: str | None) -> Iterator[Reader]:
    """A reader through the kubernetes client, which knows every kind of kubeconfig."""
    from kubernetes import config

    api = config.new_client_from_config(config_file=kubeconfig, context=context)

    def read(method: str, path: str, body: bytes | None) -> tuple[int, str, bytes]:
        resource, _mark, query = path.partition("?")
        sent = {"Accept": "application/json"} if body is None else {
            "Accept": "application/json", "Content-Type": APPLY}  # fmt: skip
        verb, url, headers, _body, post_params = api.param_serialize(
            method=method, resource_path=resource, query_params=parse_qsl(query),
            header_params=sent, auth_settings=["BearerToken"],
        )  # fmt: skip
        response = api.call_api(
            verb, url, header_params=headers, body=body, post_params=post_params
        )
        return response.status, str(response.reason), response.read() or b""

    with api:
        yield read


@contextmanager
def reader(kubeconfig: str | None, context: str | None) -> Iterator[Reader]:
    if kubeconfig:
        with direct_reader(kubeconfig, context) as read:
            if read is not None:
                yield read
                return
    with client_reader(kubeconfig, context) as read:
        yield read


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "objects": {"type": "list", "elements": "dict"},
            # Not no_log: every value of a no_log option is masked in the result, names too.
            # The manifests can hold a Secret's data: the task that passes them sets no_log.
            "manifests": {"type": "list", "elements": "dict"},
            "field_manager": {"type": "str"},
            "kubeconfig": {"type": "path"},
            "context": {"type": "str"},
        },
        required_one_of=[("objects", "manifests")],
        required_by={"manifests": "field_manager"},
        supports_check_mode=True,
    )
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"))
    params = module.params
    manifests: list[dict[str, Any]] = params["manifests"] or []
    objects = params["objects"] or [identity(manifest) for manifest in manifests]
    found: dict[str, dict[str, Any]] = {}
    drifted: dict[str, list[str]] = {}
    missing: list[str] = []
    try:
        with reader(params["kubeconfig"], params["context"]) as read:
            live: dict[str, Any] = {}
            for obj in objects:
                status, reason, data = read("GET", resource_path(obj), None)
                if status == 404:
                    missing.append(label(obj))
                elif 200 <= status < 300:
                    live[label(obj)] = json.loads(data)
                    found[label(obj)] = summary(live[label(obj)])
                else:
                    module.fail_json(msg=f"Reading {label(obj)} failed: {status} {reason}")
            for manifest in manifests:
                obj = identity(manifest)
                if label(obj) not in live:
                    continue
                path = apply_path(obj, params["field_manager"])
                status, reason, data = read("PATCH", path, json.dumps(manifest).encode())
                # An apply the server refuses changes something too: the role's apply says what.
                changed = (
                    differences(live[label(obj)], json.loads(data))
                    if 200 <= status < 300
                    else [f"(a dry-run apply was refused: {status} {reason})"]
                )
                if changed:
                    drifted[label(obj)] = changed
    except ImportError:
        module.fail_json(msg=missing_required_lib("kubernetes"))
    except (OSError, ValueError, ssl.SSLError, http.client.HTTPException) as error:
        module.fail_json(msg=f"Reading the objects failed: {error}")
    module.exit_json(changed=False, found=found, drifted=drifted, missing=missing)


if __name__ == "__main__":
    main()
