"""Jinja tests for Kubernetes names and quantities, image names and host addresses, used by
the roles' input checks.

{{ mongodb_namespace is k8s_dns_label }}
{{ flaskapp_cpu_limit is k8s_cpu }}
{{ existing_cluster_image_registry is image_registry }}
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_CPU = re.compile(r"^([0-9]+m|[0-9]+(\.[0-9]{1,3})?)$")
_BYTES = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_LABEL_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:@-]*[A-Za-z0-9_.-]$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HOST_NAME = re.compile(
    r"^[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*$"
)
# An image repository without tag or digest, after an optional registry host[:port]/.
_PATH_COMPONENT = r"[a-z0-9]+([._-][a-z0-9]+)*"
_REGISTRY_HOST = r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?"
_IMAGE_REPOSITORY = re.compile(rf"^({_REGISTRY_HOST}/)?{_PATH_COMPONENT}(/{_PATH_COMPONENT})*$")
# Where images are pushed: a registry host[:port] and an optional path, without a scheme.
_IMAGE_REGISTRY = re.compile(rf"^{_REGISTRY_HOST}(/{_PATH_COMPONENT})*$")
# minikube's own rule (pkg/minikube/config/profile.go): DNS labels joined by dots, 2 or more
# characters, not one of its subcommands.
_MINIKUBE_PROFILE = re.compile(
    r"^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])\.)*"
    r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])$"
)
_MINIKUBE_RESERVED = {
    "start",
    "stop",
    "status",
    "delete",
    "config",
    "open",
    "profile",
    "addons",
    "cache",
    "logs",
}


def _matches(pattern: re.Pattern[str]) -> Callable[[object], bool]:
    def test(value: object) -> bool:
        return isinstance(value, str) and pattern.match(value) is not None

    return test


def k8s_label_map(value: object) -> bool:
    """A non-empty mapping of valid label names to valid label values."""
    return (
        isinstance(value, Mapping)
        and len(value) > 0
        and all(
            isinstance(name, str)
            and _LABEL_NAME.match(name) is not None
            and isinstance(text, str)
            and _LABEL_VALUE.match(text) is not None
            for name, text in value.items()
        )
    )


def k8s_env_map(value: object) -> bool:
    """A mapping of environment variable names to scalar values (possibly empty)."""
    return isinstance(value, Mapping) and all(
        isinstance(name, str)
        and _ENV_NAME.match(name) is not None
        and isinstance(setting, str | int | float | bool)
        for name, setting in value.items()
    )


def host_address(value: object) -> bool:
    """A host name, an IPv4 address or an IPv6 address (with or without brackets)."""
    if not isinstance(value, str) or value == "":
        return False
    try:
        ipaddress.ip_address(value.removeprefix("[").removesuffix("]"))
    except ValueError:
        return _HOST_NAME.match(value) is not None and len(value) <= 253
    return True


def minikube_profile(value: object) -> bool:
    """A name minikube accepts for a profile."""
    return (
        isinstance(value, str)
        and len(value) > 1
        and _MINIKUBE_PROFILE.match(value) is not None
        and value.lower() not in _MINIKUBE_RESERVED
    )


class TestModule:
    def tests(self) -> dict[str, Callable[[object], bool]]:
        return {
            "k8s_dns_label": _matches(_DNS_LABEL),
            "k8s_dns_1035_label": _matches(_DNS_1035_LABEL),
            "k8s_dns_subdomain": _matches(_DNS_SUBDOMAIN),
            "k8s_cpu": _matches(_CPU),
            "k8s_bytes": _matches(_BYTES),
            "k8s_label_map": k8s_label_map,
            "k8s_env_map": k8s_env_map,
            "image_reference": _matches(_IMAGE),
            "image_repository": _matches(_IMAGE_REPOSITORY),
            "image_registry": _matches(_IMAGE_REGISTRY),
            "host_address": host_address,
            "minikube_profile": minikube_profile,
        }
