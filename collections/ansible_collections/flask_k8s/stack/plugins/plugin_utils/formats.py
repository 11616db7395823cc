"""The formats a setting can be checked against: Kubernetes names and quantities, image names,
host addresses and paths, each with the phrase a message uses for what it accepts.

The check_settings action checks the `format` of an option's `checks` in a role's argument spec
against FORMATS; the Jinja tests of the same names (plugins/test/formats.py) serve the checks
that compare settings with each other.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

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
_PORT_RANGE = re.compile(r"^[0-9]{1,5}-[0-9]{1,5}$")
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
        return isinstance(value, str) and pattern.fullmatch(value) is not None

    return test


def k8s_label_map(value: object) -> bool:
    """A non-empty mapping of valid label names to valid label values."""
    return (
        isinstance(value, Mapping)
        and len(value) > 0
        and all(
            isinstance(name, str)
            and _LABEL_NAME.fullmatch(name) is not None
            and isinstance(text, str)
            and _LABEL_VALUE.fullmatch(text) is not None
            for name, text in value.items()
        )
    )


def k8s_env_map(value: object) -> bool:
    """A mapping of environment variable names to scalar values (possibly empty)."""
    return isinstance(value, Mapping) and all(
        isinstance(name, str)
        and _ENV_NAME.fullmatch(name) is not None
        and isinstance(setting, str | int | float | bool)
        for name, setting in value.items()
    )


def k8s_resources(value: object) -> bool:
    """A container's resources: requests and limits, each with a CPU and a memory quantity."""
    return isinstance(value, Mapping) and all(
        isinstance(value.get(part), Mapping)
        and _matches(_CPU)(value[part].get("cpu"))
        and _matches(_BYTES)(value[part].get("memory"))
        for part in ("requests", "limits")
    )


def host_address(value: object) -> bool:
    """A host name, an IPv4 address or an IPv6 address (with or without brackets)."""
    if not isinstance(value, str) or value == "":
        return False
    try:
        ipaddress.ip_address(value.removeprefix("[").removesuffix("]"))
    except ValueError:
        return _HOST_NAME.fullmatch(value) is not None and len(value) <= 253
    return True


def port_range(value: object) -> bool:
    """FIRST-LAST: two port numbers, the first below the second."""
    if not isinstance(value, str) or _PORT_RANGE.fullmatch(value) is None:
        return False
    first, last = (int(port) for port in value.split("-"))
    return 1 <= first < last <= 65535


def minikube_profile(value: object) -> bool:
    """A name minikube accepts for a profile."""
    return (
        isinstance(value, str)
        and len(value) > 1
        and _MINIKUBE_PROFILE.fullmatch(value) is not None
        and value.lower() not in _MINIKUBE_RESERVED
    )


def _path_test(kind: str) -> Callable[[object], bool]:
    def test(value: object) -> bool:
        if not isinstance(value, str) or value == "":
            return False
        if kind == "absolute":
            return os.path.isabs(value)
        if kind == "home":
            return os.path.isabs(os.path.expanduser(value))
        return os.path.isfile(value) if kind == "file" else os.path.isdir(value)

    return test


@dataclass(frozen=True)
class Format:
    test: Callable[[object], bool]
    # What a value of this format is, as a message says it: "must be <meaning>".
    meaning: str


FORMATS: dict[str, Format] = {
    "k8s_dns_label": Format(_matches(_DNS_LABEL), "a DNS label"),
    "k8s_dns_1035_label": Format(
        _matches(_DNS_1035_LABEL), "a DNS label that starts with a letter"
    ),
    "k8s_dns_subdomain": Format(_matches(_DNS_SUBDOMAIN), "a DNS subdomain"),
    "k8s_cpu": Format(_matches(_CPU), "a CPU quantity such as 200m or 1"),
    "k8s_bytes": Format(_matches(_BYTES), "a memory quantity such as 250Mi"),
    "k8s_label_map": Format(k8s_label_map, "a map of label names to label values"),
    "k8s_env_map": Format(k8s_env_map, "a map of environment variable names to plain values"),
    "k8s_resources": Format(
        k8s_resources,
        "requests and limits, each with a CPU quantity (100m, 1)"
        " and a memory quantity (256Mi, 1Gi)",
    ),
    "mapping": Format(lambda value: isinstance(value, Mapping), "a map"),
    "image_reference": Format(_matches(_IMAGE), "an image reference"),
    "image_repository": Format(
        _matches(_IMAGE_REPOSITORY), "an image repository (no tag), such as flask-k8s/flaskapp"
    ),
    "image_registry": Format(
        _matches(_IMAGE_REGISTRY),
        "a registry host[:port][/path] without a scheme, such as registry.example.com:5000",
    ),
    "host_address": Format(host_address, "a host name or IP address"),
    "port_range": Format(port_range, "FIRST-LAST with 1 <= FIRST < LAST <= 65535"),
    "minikube_profile": Format(
        minikube_profile,
        "a minikube profile name (DNS labels joined by dots, 2 characters or more,"
        " not a minikube command such as start)",
    ),
    "absolute_path": Format(_path_test("absolute"), "an absolute path"),
    "home_path": Format(_path_test("home"), "an absolute path (~ is expanded)"),
    "file": Format(_path_test("file"), "an existing file on this host"),
    "directory": Format(_path_test("directory"), "an existing directory on this host"),
}
