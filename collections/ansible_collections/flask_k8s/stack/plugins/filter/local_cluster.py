"""Filters of the local_cluster role: whether the cluster is current, and what its teardown did.

local_cluster_verdict: whether the local cluster is current, and what a run says about it.

    {{ local_cluster_probe | flask_k8s.stack.local_cluster_verdict(local_cluster_fingerprint,
                                                                   local_cluster_reconcile) }}

Takes the result of the local_cluster_probe module and the fingerprint of the cluster's inputs.
A cluster is current when no reconcile is asked for, it is healthy and the last converge stored
this fingerprint. A cluster converged here before of which no component runs is being
restarted, and the reason says why it takes it for a restart of the host or a kill of its
processes.

local_cluster_network_problems: one sentence for each way the cluster's networks conflict.

    {{ local_cluster_pod_cidr | flask_k8s.stack.local_cluster_network_problems(
         local_cluster_service_cidr, local_cluster_dns_ip, local_cluster_apiserver_service_ip) }}

The pod and Service networks must not overlap, and CoreDNS's address must be one of the Service
network other than the API server's. A network that is no IPv4 network is not related to the
others: its own check (the role's argument spec) names it.

local_cluster_settings: the names of the settings that shape the cluster, in their order.

    {{ lookup('ansible.builtin.file', role_path ~ '/defaults/main.yml')
       | flask_k8s.stack.local_cluster_settings }}

Takes the text of the role's defaults; every setting but those that say what a run does
(RUN_SETTINGS) goes into the fingerprint of a converged cluster.

local_cluster_cleanup_report: what the output of files/cluster-cleanup.sh says, one line a thing
it removed (or `nothing to remove`), then one line `volumes: ...` on the volumes.

    {{ local_cluster_cleanup.stdout_lines
       | flask_k8s.stack.local_cluster_cleanup_report(local_cluster_delete_volumes) }}
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

import yaml
from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

CURRENT = (
    "Local cluster is current (inputs unchanged since it was converged, every component healthy):"
    " nothing to check."
)
RESTART = "Restarting the local cluster, converged here before, of which no component runs: "
RESTART_END = ". Its state, images and volumes are on disk; every component and pod starts again."
CONVERGE = "Converging the local cluster step by step: "
NOTHING = "nothing to remove"
# Volume lines that say nothing changed.
VOLUMES_UNCHANGED = re.compile(r"^volumes: (kept|none) ")
VOLUMES_KEPT_HINT = " (local_cluster_delete_volumes=true deletes them)."
# Settings that say what a run does, not what the cluster is: a change of them alone leaves a
# converged cluster current.
RUN_SETTINGS = ("local_cluster_state", "local_cluster_reconcile", "local_cluster_delete_volumes")
# What the verdict reads of the probe's result.
PROBE_KEYS = (
    "stamp",
    "boot_id",
    "boot_id_now",
    "lost",
    "missing",
    "expiring",
    "down",
    "unready",
    "healthy",
    "stopped",
)


def restart_reason(probe: Mapping[str, Any]) -> str:
    """Why a cluster converged here before, of which no component runs, is started again;
    empty for any other cluster."""
    if not probe["stamp"] or not probe["stopped"]:
        return ""
    if probe["boot_id"] and probe["boot_id"] != probe["boot_id_now"]:
        cause = "the host has restarted since (its boot id changed)"
    elif probe["lost"]:
        cause = (
            f"its runtime directory {probe['lost']} is gone too, as after a restart of the host"
            " (the boot id is unchanged: its processes were killed and /run emptied)"
        )
    else:
        cause = "its processes were stopped or killed"
    return RESTART + cause + RESTART_END


def converge_reason(probe: Mapping[str, Any], reconcile: bool) -> str:
    """Why a cluster that is not current is converged step by step."""
    if probe["missing"]:
        return "binaries to build: " + ", ".join(probe["missing"])
    if reconcile:
        return "reconcile requested"
    if probe["expiring"]:
        return "certificates to renew: " + ", ".join(f"expiring={n}" for n in probe["expiring"])
    if not probe["healthy"]:
        problems = [f"down={n}" for n in probe["down"]] + [f"unready={n}" for n in probe["unready"]]
        return "not healthy: " + ", ".join(problems)
    return "inputs changed since the last converge"


def local_cluster_verdict(
    probe: Mapping[str, Any], fingerprint: str, reconcile: object = False
) -> dict[str, Any]:
    """current (bool), restart_reason (empty unless the cluster is restarted) and message (what
    the run says it does)."""
    if not isinstance(probe, Mapping):
        raise AnsibleFilterError("local_cluster_verdict: expects the local_cluster_probe result")
    absent = [key for key in PROBE_KEYS if key not in probe]
    if absent:
        raise AnsibleFilterError(f"local_cluster_verdict: the probe result lacks {absent}")
    try:
        reconcile = boolean(reconcile, strict=True)
    except TypeError as exc:
        raise AnsibleFilterError(f"local_cluster_verdict: reconcile: {exc}") from None
    current = bool(not reconcile and probe["healthy"] and probe["stamp"] == fingerprint)
    reason = "" if current else restart_reason(probe)
    if current:
        message = CURRENT
    elif reason:
        message = reason
    else:
        message = CONVERGE + converge_reason(probe, reconcile) + "."
    return {"current": current, "restart_reason": reason, "message": message}


def local_cluster_settings(defaults: object) -> list[str]:
    """The names the YAML mapping `defaults` defines, less RUN_SETTINGS, in their order."""
    try:
        settings = yaml.safe_load(defaults) if isinstance(defaults, str) else None
    except yaml.YAMLError as exc:
        raise AnsibleFilterError(
            f"local_cluster_settings: the defaults are no YAML: {exc}"
        ) from None
    if not isinstance(settings, dict) or not all(isinstance(name, str) for name in settings):
        raise AnsibleFilterError(
            f"local_cluster_settings: expects the text of a YAML mapping, got {defaults!r}"
        )
    return [name for name in settings if name not in RUN_SETTINGS]


def local_cluster_cleanup_report(
    lines: list[str], delete_volumes: object = False
) -> dict[str, Any]:
    """changed (it removed or deleted something), removed (its lines say more than `nothing to
    remove`) and volumes (its line on the volumes, as the run says it). No lines (a run that
    failed before it printed any, or was skipped) changed nothing and say nothing on the
    volumes."""
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise AnsibleFilterError(
            f"local_cluster_cleanup_report: expects the lines of cluster-cleanup.sh, got {lines!r}"
        )
    try:
        delete = boolean(delete_volumes, strict=True)
    except TypeError as exc:
        raise AnsibleFilterError(f"local_cluster_cleanup_report: delete_volumes: {exc}") from None
    last = lines[-1] if lines else ""
    hint = "" if not lines or delete or last.startswith("volumes: none") else VOLUMES_KEPT_HINT
    return {
        "changed": any(line != NOTHING and not VOLUMES_UNCHANGED.match(line) for line in lines),
        "removed": lines[:-1] != [NOTHING],
        "volumes": re.sub(r"^volumes: ", "Local cluster volumes: ", last, count=1) + hint,
    }


def _network(cidr: object) -> ipaddress.IPv4Network | None:
    if "/" not in str(cidr):
        return None
    try:
        network = ipaddress.ip_network(str(cidr), strict=False)
    except ValueError:
        return None
    return network if isinstance(network, ipaddress.IPv4Network) else None


def local_cluster_network_problems(
    pod_cidr: object, service_cidr: object, dns_ip: object, apiserver_ip: object
) -> list[str]:
    """Each conflict between the pod network, the Service network and CoreDNS's address."""
    pods, services = _network(pod_cidr), _network(service_cidr)
    if pods is None or services is None:
        return []
    problems = []
    if pods.overlaps(services):
        problems.append(
            f"local_cluster_pod_cidr ({pod_cidr}) and local_cluster_service_cidr ({service_cidr})"
            " must not overlap."
        )
    try:
        dns = ipaddress.IPv4Address(str(dns_ip))
    except ValueError:
        dns = None
    if dns is None or dns not in services or str(dns) == str(apiserver_ip):
        problems.append(
            f"local_cluster_dns_ip must be an address inside local_cluster_service_cidr"
            f" ({service_cidr}) other than the API server's {apiserver_ip}, got '{dns_ip}'."
        )
    return problems


class FilterModule:
    def filters(self) -> dict[str, Callable[..., object]]:
        return {
            "local_cluster_verdict": local_cluster_verdict,
            "local_cluster_cleanup_report": local_cluster_cleanup_report,
            "local_cluster_settings": local_cluster_settings,
            "local_cluster_network_problems": local_cluster_network_problems,
        }
