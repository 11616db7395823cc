"""Jinja filters for the cluster role: what cluster/build.sh says of its binaries, the log and
the end of a build, and the identity of a cluster.

{{ status.stdout_lines | cluster_build_missing }}  the components build.sh --status calls missing
{{ lookup('ansible.builtin.pipe', cmd) | cluster_build_paths }}  each component's binary
{{ arguments | cluster_build_log(cache) }}         the log of a build with these arguments
{{ slurped_rc | cluster_build_exit }}              the exit status the build wrote ('' if none)
{{ k8s_objects_result | cluster_identity }}        the uid of kube-system ('' if none)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

# The object k8s_objects reads to know a cluster by.
IDENTITY = "Namespace/kube-system"


def _status_lines(status: object, what: str) -> list[list[str]]:
    """The lines of `build.sh --status` ("<name> <path> cached|missing"), split at spaces;
    takes the output as one text or as its lines, and skips empty lines."""
    if isinstance(status, str):
        status = status.splitlines()
    if not isinstance(status, list | tuple):
        raise AnsibleFilterError(f"{what} needs the output of build.sh --status, got {status!r}")
    return [str(line).split(" ") for line in status if str(line)]


def cluster_build_missing(status: list[str] | str) -> list[str]:
    """The components `build.sh --status` says are missing, in its order."""
    return [
        fields[0]
        for fields in _status_lines(status, "cluster_build_missing")
        if len(fields) > 1 and fields[-1] == "missing"
    ]


def cluster_build_paths(status: list[str] | str) -> dict[str, str]:
    """The path of each component's binary, as `build.sh --status` names it."""
    paths = {}
    for fields in _status_lines(status, "cluster_build_paths"):
        if len(fields) < 2:
            raise AnsibleFilterError(f"build.sh --status printed no path for {fields[0]!r}")
        paths[fields[0]] = fields[1]
    return paths


def cluster_build_log(arguments: list[str], cache: str) -> str:
    """The log of a build.sh run with these arguments (its options, then the components): one
    per set of arguments in the binary cache, named by the first 8 hex digits of the SHA-1 of
    the arguments joined with spaces."""
    if isinstance(arguments, str) or not isinstance(arguments, list | tuple):
        raise AnsibleFilterError(f"cluster_build_log needs a list of arguments, got {arguments!r}")
    if not isinstance(cache, str) or not cache:
        raise AnsibleFilterError(f"cluster_build_log needs the binary cache, got {cache!r}")
    joined = " ".join(str(argument) for argument in arguments)
    digest = hashlib.sha1(joined.encode("utf-8"), usedforsecurity=False).hexdigest()
    return f"{cache}/build-{digest[:8]}.log"


def cluster_build_exit(slurped: Mapping[str, Any]) -> str:
    """The exit status a build wrote to its .rc file, read with ansible.builtin.slurp, without
    surrounding white space ('' when the file was not there)."""
    if not isinstance(slurped, Mapping):
        raise AnsibleFilterError(f"cluster_build_exit needs the result of slurp, got {slurped!r}")
    content = slurped.get("content", "")
    try:
        return base64.b64decode(str(content)).decode("utf-8").strip()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise AnsibleFilterError(f"the build's exit status cannot be read: {exc}") from None


def cluster_identity(result: Mapping[str, Any]) -> str:
    """The uid of the kube-system namespace in the result of k8s_objects ('' when it was not
    found, or the task did not run)."""
    if not isinstance(result, Mapping):
        raise AnsibleFilterError(
            f"cluster_identity needs the result of k8s_objects, got {result!r}"
        )
    found = result.get("found") or {}
    namespace = found.get(IDENTITY) if isinstance(found, Mapping) else None
    metadata = namespace.get("metadata") if isinstance(namespace, Mapping) else None
    uid = metadata.get("uid", "") if isinstance(metadata, Mapping) else ""
    return str(uid)


class FilterModule:
    def filters(self) -> dict[str, Callable[..., object]]:
        return {
            "cluster_build_missing": cluster_build_missing,
            "cluster_build_paths": cluster_build_paths,
            "cluster_build_log": cluster_build_log,
            "cluster_build_exit": cluster_build_exit,
            "cluster_identity": cluster_identity,
        }
