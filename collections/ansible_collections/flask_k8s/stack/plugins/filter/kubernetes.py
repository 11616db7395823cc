"""Jinja filters over Kubernetes manifests, the objects the API server returns and kubeconfigs,
and the labels every object of the project carries.

{{ query('ansible.builtin.template', 'service.yaml.j2') | k8s_manifests }}
{{ nodes.resources | k8s_node_address }}                 the address a NodePort answers on
{{ {'app': 'web'} | k8s_label_selector }}                'app=web'
{{ applied | k8s_applied_object('Deployment') }}         an object kubernetes.core.k8s applied
{{ slurped | kubeconfig_contexts(wanted) }}              {'selected': ..., 'names': [...]}
{{ rendered | k8s_fingerprint(extra) }}                   the SHA-256 of rendered manifests
{{ 'mongodb' | k8s_selector_labels(instance) }}          a component's selector labels
{{ selector_labels | k8s_labels('database') }}           with the component and the project's
{{ ['localhost'] | k8s_subject_alt_names(svc, ns) }}     a server certificate's names
{{ log | k8s_last_log_line('no log available') }}        the last line of a pod's log
{{ log | k8s_log_tail(5) }}                              its last 5 lines
{{ log | k8s_log_json({}) }}                              its last JSON line, parsed
{{ jobs | k8s_condition_reasons }}                       the reasons of their conditions
{{ claims | k8s_claim_volumes(volumes) }}                each claim's volume and its data's place
{{ pods | k8s_ready_pods }}                              the names of the ready pods
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.flask_k8s.stack.plugins.plugin_utils.logs import last_line, result_lines
from ansible_collections.flask_k8s.stack.plugins.plugin_utils.objects import field, has_condition

# The labels that say an object belongs to the project and who manages it.
PROJECT_LABELS = {
    "app.kubernetes.io/part-of": "flask-k8s",
    "app.kubernetes.io/managed-by": "ansible",
}
# The addresses of a node that a NodePort answers on, in the order they are preferred.
NODE_ADDRESS_TYPES = ("ExternalIP", "InternalIP")


def k8s_manifests(
    texts: Iterable[str] | str, exclude_kinds: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """Every object of YAML manifests, as a list; takes one text or a list of texts, each with
    one or more documents, and skips empty documents and the objects of `exclude_kinds` (None
    for none)."""
    if isinstance(texts, str):
        texts = [texts]
    excluded = set(exclude_kinds or ())
    return [
        document
        for text in texts
        for document in yaml.safe_load_all(text)
        if document and not (isinstance(document, Mapping) and document.get("kind") in excluded)
    ]


def k8s_fingerprint(texts: Iterable[str], extra: Iterable[str] | None = None) -> str:
    """The SHA-256 (hex) of rendered manifests and of `extra` strings (None for none), joined
    by document separators: it changes when any of them does."""
    if isinstance(texts, str):
        raise AnsibleFilterError("k8s_fingerprint takes a list of rendered manifests")
    parts = [str(text) for text in texts] + [str(text) for text in extra or ()]
    return hashlib.sha256("\n---\n".join(parts).encode("utf-8")).hexdigest()


def k8s_node_address(nodes: object) -> str:
    """The first ExternalIP of the first node, else its first InternalIP, else ''. `nodes` is
    the `resources` of kubernetes.core.k8s_info for kind Node (an empty list when there is
    none)."""
    if not isinstance(nodes, list) or not nodes or not isinstance(nodes[0], Mapping):
        return ""
    status = nodes[0].get("status")
    addresses = status.get("addresses") if isinstance(status, Mapping) else None
    if not isinstance(addresses, list):
        return ""
    for kind in NODE_ADDRESS_TYPES:
        for address in addresses:
            if (
                isinstance(address, Mapping)
                and address.get("type") == kind
                and isinstance(address.get("address"), str)
                and address["address"]
            ):
                return address["address"]
    return ""


def k8s_label_selector(labels: Mapping[str, object]) -> str:
    """A label selector for equality on every label: 'key=value,key=value', in the labels'
    order."""
    if not isinstance(labels, Mapping):
        raise AnsibleFilterError(f"k8s_label_selector takes a mapping of labels, got {labels!r}")
    return ",".join(f"{key}={value}" for key, value in labels.items())


def k8s_applied_object(applied: object, kind: str) -> dict[str, Any]:
    """The first object of `kind` that a registered kubernetes.core.k8s task applied, {} when
    it applied none. The module returns one object as `result`, several as `result.results`,
    each with its object as `result`."""
    result = applied.get("result") if isinstance(applied, Mapping) else None
    if not isinstance(result, Mapping):
        return {}
    results = result.get("results")
    if isinstance(results, list):
        objects = [item.get("result") for item in results if isinstance(item, Mapping)]
    else:
        objects = [result]
    for item in objects:
        if isinstance(item, Mapping) and item.get("kind") == kind:
            return dict(item)
    return {}


def kubeconfig_contexts(slurped: object, wanted: str | None = "") -> dict[str, Any]:
    """The context to use and the names of all contexts in a kubeconfig read by
    ansible.builtin.slurp: {'selected': `wanted` or the kubeconfig's current-context or '',
    'names': [...]}. An empty kubeconfig has no contexts. The kubeconfig's text never appears
    in an error (it holds credentials)."""
    if not isinstance(slurped, Mapping) or not isinstance(slurped.get("content"), str):
        raise AnsibleFilterError("kubeconfig_contexts takes the result of ansible.builtin.slurp")
    try:
        text = base64.b64decode(slurped["content"], validate=True)
        config = yaml.safe_load(text)
    except (binascii.Error, ValueError, yaml.YAMLError):
        # The parser's message quotes the text: it is left out.
        raise AnsibleFilterError("The kubeconfig is not valid YAML.") from None
    if not isinstance(config, Mapping):
        config = {}
    current = config.get("current-context")
    contexts = config.get("contexts")
    names = [
        context["name"]
        for context in (contexts if isinstance(contexts, list) else [])
        if isinstance(context, Mapping) and isinstance(context.get("name"), str)
    ]
    selected = wanted or (current if isinstance(current, str) else "")
    return {"selected": selected, "names": names}


def k8s_selector_labels(name: str, instance: object) -> dict[str, object]:
    """The labels that select a component's pods: app.kubernetes.io/name (what it is, such as
    mongodb, written by the role) and app.kubernetes.io/instance (which one: the object's name,
    a setting, passed as given: the role's own check names a bad one in its words)."""
    if not isinstance(name, str) or not name:
        raise AnsibleFilterError(f"k8s_selector_labels takes a non-empty name, got {name!r}")
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": instance}


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


def k8s_log_tail(log: object, count: int) -> list[str]:
    """The last `count` non-empty lines of a log that kubernetes.core.k8s_log read (its
    registered result), [] when it read none (no pod, a failed read, an empty log)."""
    if count < 1:
        return []
    return [line for line in result_lines(log, "log_lines", strict=False) if line][-count:]


def k8s_last_log_line(log: object, default: str) -> str:
    """The last non-empty line of a log that kubernetes.core.k8s_log read, `default` when it
    read none; a result of another shape reads as none (the line explains a failure, which an
    error here would hide)."""
    return last_line(result_lines(log, "log_lines", strict=False), default)


_REQUIRED = object()


def k8s_log_json(log: object, default: object = _REQUIRED) -> object:
    """The last line of a log that kubernetes.core.k8s_log read that starts with '{', parsed as
    JSON (a program's summary among its other output); `default` when there is none, or an
    error without a default. A line that starts with '{' but is not JSON is an error."""
    lines = log.get("log_lines") if isinstance(log, Mapping) else None
    found = (
        [str(line) for line in lines if str(line).startswith("{")]
        if isinstance(lines, list)
        else []
    )
    if not found:
        if default is _REQUIRED:
            raise AnsibleFilterError("k8s_log_json: the log has no line of JSON")
        return default
    try:
        return json.loads(found[-1])
    except ValueError:
        raise AnsibleFilterError(
            f"k8s_log_json: the log's last line that starts with '{{' is not JSON: {found[-1][:80]}"
        ) from None


def k8s_condition_reasons(objects: object) -> list[str]:
    """The reason of every status condition of `objects` (the `resources` of
    kubernetes.core.k8s_info), in order, '' for a condition without one."""
    reasons = []
    for obj in objects if isinstance(objects, list) else []:
        conditions = field(obj, "status", "conditions")
        for condition in conditions if isinstance(conditions, list) else []:
            reason = condition.get("reason", "") if isinstance(condition, Mapping) else ""
            reasons.append(str(reason))
    return reasons


def k8s_ready_pods(pods: object) -> list[str]:
    """The names of the pods of `pods` (the `resources` of kubernetes.core.k8s_info for kind
    Pod) that are Ready and not being deleted (no metadata.deletionTimestamp), in order."""
    if not isinstance(pods, list):
        raise AnsibleFilterError(f"k8s_ready_pods takes a list of pods, got {pods!r}")
    return [
        str(field(pod, "metadata", "name"))
        for pod in pods
        if isinstance(field(pod, "metadata"), Mapping)
        and "deletionTimestamp" not in pod["metadata"]
        and has_condition(pod, "Ready")
    ]


# Where a volume's data lies, by the kind of volume: the first of these fields it has.
VOLUME_PLACES = (("local", "path"), ("hostPath", "path"), ("csi", "volumeHandle"))
_ABSENT = object()


def _place(volume: Mapping) -> str:
    spec = volume.get("spec")
    for source, key in VOLUME_PLACES:
        part = spec.get(source) if isinstance(spec, Mapping) else None
        value = part.get(key, _ABSENT) if isinstance(part, Mapping) else _ABSENT
        if value is not _ABSENT:
            return "" if value is None else str(value)
    return ""


def k8s_claim_volumes(claims: object, volumes: object) -> list[dict[str, str]]:
    """For each PersistentVolumeClaim of `claims` (the `resources` of kubernetes.core.k8s_info),
    in order: {'claim': its name, 'volume': its bound PersistentVolume's name ('' when it has
    none among `volumes`), 'where': 'volume <name> at <path>' (the volume's local or hostPath
    path, else its CSI handle; ' at <path>' left out when it has none) or 'no volume yet',
    'described': '<claim> (<where>)'}."""
    if not isinstance(claims, list) or not isinstance(volumes, list):
        raise AnsibleFilterError("k8s_claim_volumes takes the resources of two k8s_info reads")
    by_name: dict[str, Mapping] = {}
    for volume in volumes:
        name = _name(volume)
        if name and name not in by_name:
            by_name[name] = volume
    entries = []
    for claim in claims:
        spec = claim.get("spec") if isinstance(claim, Mapping) else None
        bound = spec.get("volumeName") if isinstance(spec, Mapping) else None
        volume = by_name.get(bound) if isinstance(bound, str) else None
        if volume is None:
            name, where = "", "no volume yet"
        else:
            name, place = _name(volume), _place(volume)
            where = f"volume {name}" + (f" at {place}" if place else "")
        claim_name = _name(claim)
        entries.append(
            {
                "claim": claim_name,
                "volume": name,
                "where": where,
                "described": f"{claim_name} ({where})",
            }
        )
    return entries


def _name(obj: object) -> str:
    name = field(obj, "metadata", "name")
    return name if isinstance(name, str) else ""


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
            "k8s_selector_labels": k8s_selector_labels,
            "k8s_subject_alt_names": k8s_subject_alt_names,
            "k8s_fingerprint": k8s_fingerprint,
            "k8s_node_address": k8s_node_address,
            "k8s_label_selector": k8s_label_selector,
            "k8s_applied_object": k8s_applied_object,
            "kubeconfig_contexts": kubeconfig_contexts,
            "k8s_last_log_line": k8s_last_log_line,
            "k8s_log_tail": k8s_log_tail,
            "k8s_log_json": k8s_log_json,
            "k8s_condition_reasons": k8s_condition_reasons,
            "k8s_claim_volumes": k8s_claim_volumes,
            "k8s_ready_pods": k8s_ready_pods,
        }
