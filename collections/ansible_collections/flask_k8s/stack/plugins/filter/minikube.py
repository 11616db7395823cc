"""Jinja filters over what minikube, its offline cache script and its kubeconfig say, for the
minikube role.

{{ minikube_status | minikube_running }}                   status says Host, APIServer, Kubelet run
{{ minikube_status | minikube_host }}                      the Host field of status ('' if none)
{{ minikube_addons.stdout | minikube_addon_enabled('metrics-server') }}
{{ minikube_profiles.stdout | minikube_profile_names }}    every profile, valid or invalid
{{ 'v0.1 ' | minikube_images_to_load(node_images) }}       the images the node lacks
{{ minikube_cache.stdout_lines | minikube_cache_settings }} the cache script's key=value lines
{{ minikube_profile | minikube_start_argv(...) }}          the argv of `minikube start`
{{ minikube_home | minikube_environment(settings, PATH) }}  the environment of minikube commands
{{ slurped_kubeconfig | kubeconfig_current_context }}      its current-context ('' if none)
"""

from __future__ import annotations

import base64
import binascii
import json
import posixpath
import re
from collections.abc import Callable, Mapping
from typing import Any

import yaml
from ansible.errors import AnsibleFilterError

# The components `minikube status` reports that run when the profile is up.
RUNNING_COMPONENTS = ("Host", "APIServer", "Kubelet")
# A line of the cache script's settings (scripts/minikube-cache.sh).
SETTING = re.compile(r"[a-z_]+=")


def _json(text: object, what: str) -> object:
    if not isinstance(text, str):
        raise AnsibleFilterError(f"{what} is not text: {text!r}")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise AnsibleFilterError(f"{what} is not JSON ({exc}): {text!r}") from None


def _lines(lines: object, what: str) -> list[str]:
    if isinstance(lines, str) or not isinstance(lines, list | tuple):
        raise AnsibleFilterError(f"{what} needs a list of lines, got {lines!r}")
    return [str(line) for line in lines]


def minikube_status(result: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object of `minikube status -o json`, from the last line of a registered result
    ({} when it printed nothing, or printed JSON that is not an object)."""
    if not isinstance(result, Mapping):
        raise AnsibleFilterError(f"minikube_status needs a registered result, got {result!r}")
    lines = result.get("stdout_lines") or ["{}"]
    status = _json(_lines(lines, "minikube_status")[-1], "the last line of minikube status")
    return status if isinstance(status, dict) else {}


def minikube_host(result: Mapping[str, Any]) -> str:
    """The Host field of `minikube status -o json` ('' when it has none)."""
    host = minikube_status(result).get("Host")
    return host if isinstance(host, str) else ""


def minikube_running(result: Mapping[str, Any]) -> bool:
    """Whether `minikube status -o json` ended well and says its host, API server and kubelet
    are Running (its output is read only when it ended well)."""
    if not isinstance(result, Mapping) or "rc" not in result:
        raise AnsibleFilterError(f"minikube_running needs a registered result, got {result!r}")
    if result["rc"] != 0:
        return False
    status = minikube_status(result)
    return all(status.get(component, "") == "Running" for component in RUNNING_COMPONENTS)


def minikube_addon_enabled(stdout: str, name: str) -> bool:
    """Whether `minikube addons list -o json` says the add-on `name` is enabled (an add-on it
    does not list is not)."""
    addons = _json(stdout, "minikube addons list")
    addon = addons.get(name) if isinstance(addons, dict) else None
    return isinstance(addon, dict) and addon.get("Status", "disabled") == "enabled"


def minikube_profile_names(stdout: str) -> list[str]:
    """The names of the profiles `minikube profile list -o json` lists, valid and invalid
    (none when it printed nothing)."""
    profiles = _json(stdout or "{}", "minikube profile list")
    if not isinstance(profiles, dict):
        return []
    entries = [*(profiles.get("valid") or []), *(profiles.get("invalid") or [])]
    return [str(entry["Name"]) for entry in entries if isinstance(entry, dict) and "Name" in entry]


def minikube_images_to_load(load_images: str, node_images: list[str]) -> list[str]:
    """The images of the cache script's `load_images` (separated by single spaces) that the
    node's `minikube image ls --format short` does not list."""
    if not isinstance(load_images, str):
        raise AnsibleFilterError(f"minikube_images_to_load needs a string, got {load_images!r}")
    held = set(_lines(node_images, "minikube_images_to_load"))
    return [image for image in load_images.split(" ") if image not in held]


def minikube_cache_settings(lines: list[str]) -> dict[str, str]:
    """The settings scripts/minikube-cache.sh prints, one `key=value` a line (other lines are
    its progress); a key printed twice keeps its last value."""
    settings = {}
    for line in _lines(lines, "minikube_cache_settings"):
        if SETTING.match(line):
            key, _equals, value = line.partition("=")
            settings[key] = value
    return settings


def minikube_start_argv(
    profile: str,
    cpus: object,
    memory: object,
    driver: str,
    kubernetes_version: str,
    force: bool,
    extra_args: list[Any],
    offline_start_args: str | None = None,
) -> list[Any]:
    """The argv of `minikube start` for the profile: its CPUs and memory; offline, the cache
    script's `start_args` (separated by single spaces), otherwise the driver, the Kubernetes
    version and --force when forced; then the further arguments."""
    if not isinstance(profile, str) or not profile:
        raise AnsibleFilterError(f"minikube_start_argv needs a profile name, got {profile!r}")
    if isinstance(extra_args, str) or not isinstance(extra_args, list | tuple):
        raise AnsibleFilterError(
            f"minikube_start_argv needs a list of arguments, got {extra_args!r}"
        )
    if offline_start_args is not None:
        if not isinstance(offline_start_args, str):
            raise AnsibleFilterError(
                f"the offline cache's start_args must be a string, got {offline_start_args!r}"
            )
        mode_args = offline_start_args.split(" ")
    elif not isinstance(force, bool):
        raise AnsibleFilterError(f"minikube_start_argv needs force as a boolean, got {force!r}")
    else:
        mode_args = [f"--driver={driver}", f"--kubernetes-version={kubernetes_version}"]
        mode_args += ["--force"] if force else []
    return [
        "minikube", "start", "-p", profile, f"--cpus={cpus}", f"--memory={memory}",
        *mode_args, *extra_args,
    ]  # fmt: skip


def minikube_environment(
    home: str, offline_settings: Mapping[str, str] | None = None, path: str = ""
) -> dict[str, str]:
    """The environment of a minikube command: MINIKUBE_HOME when `home` is set, and with the
    offline cache's settings, PATH with the directories of its minikube and kubectl first."""
    if not isinstance(home, str):
        raise AnsibleFilterError(f"minikube_home must be a string, got {home!r}")
    environment = {"MINIKUBE_HOME": home} if home else {}
    if offline_settings:
        if not isinstance(offline_settings, Mapping):
            raise AnsibleFilterError(
                f"the offline settings must be a mapping, got {offline_settings!r}"
            )
        try:
            binaries = [str(offline_settings[name]) for name in ("minikube", "kubectl")]
        except KeyError as exc:
            raise AnsibleFilterError(f"the offline settings name no {exc.args[0]}") from None
        environment["PATH"] = ":".join([*(posixpath.dirname(b) for b in binaries), str(path)])
    return environment


def kubeconfig_current_context(slurped: Mapping[str, Any]) -> str | None:
    """The current-context of a kubeconfig read with ansible.builtin.slurp ('' when the file is
    empty or names none)."""
    if not isinstance(slurped, Mapping) or not isinstance(slurped.get("content"), str):
        raise AnsibleFilterError("kubeconfig_current_context needs the result of slurp")
    try:
        text = base64.b64decode(slurped["content"]).decode("utf-8")
        config = yaml.safe_load(text)
    except (binascii.Error, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise AnsibleFilterError(f"the kubeconfig cannot be read: {exc}") from None
    if not isinstance(config, dict):
        return ""
    return config.get("current-context", "")


class FilterModule:
    def filters(self) -> dict[str, Callable[..., object]]:
        return {
            "minikube_status": minikube_status,
            "minikube_host": minikube_host,
            "minikube_running": minikube_running,
            "minikube_addon_enabled": minikube_addon_enabled,
            "minikube_profile_names": minikube_profile_names,
            "minikube_images_to_load": minikube_images_to_load,
            "minikube_cache_settings": minikube_cache_settings,
            "minikube_start_argv": minikube_start_argv,
            "minikube_environment": minikube_environment,
            "kubeconfig_current_context": kubeconfig_current_context,
        }
