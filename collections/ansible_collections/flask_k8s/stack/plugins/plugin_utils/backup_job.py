"""The Jobs of the backup role, and what it reads from the cluster: the pods of a Job it runs
(the result of kubernetes.core.k8s_info for the pods of the Job), the JSON lines the backup tool
writes to its log, and the backup CronJob.

The tool writes one JSON object a line: log records carry a `level`, the lines it prints do not,
and its last line with a `result` (done, refused or failed) says what it did, or why not, in
`message`. The filters of plugins/filter/backup_job.py and the test of plugins/test/backup_job.py
are these functions.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.flask_k8s.stack.plugins.plugin_utils.logs import last_line, result_lines
from ansible_collections.flask_k8s.stack.plugins.plugin_utils.objects import (
    FINGERPRINT_ANNOTATION,
    field,
)

# The waiting states of a container that do not pass by themselves: a pod in one of them never
# starts, so the role stops at once instead of waiting for the Job's deadline.
STUCK_REASONS = (
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
)
# The phases of a pod whose Job has ended.
ENDED = ("Succeeded", "Failed")


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise AnsibleFilterError(f"{what} must be a mapping, got {type(value).__name__}")
    return value


# What a mode of the role's table of Jobs (backup_job_modes) may say.
JOB_FIELDS = ("component", "database", "name", "stamped", "timeout")


def jobs(modes: object, prefix: str, stamp: str, timeout: object) -> dict[str, dict[str, Any]]:
    """The Jobs of the role, by mode, in the table's order, from what sets each apart (modes):
    its component (also its container's name); database, whether its pod reaches the database
    (else false); name, the part of the Job's name after prefix (else the mode); stamped,
    whether the name ends with the time of the run, stamp (else true; the CronJob's Job is named
    as the CronJob); timeout, the seconds it may run (else `timeout`, as given).

    Each Job is {mode, name, component, database, timeout}."""
    derived = {}
    for mode, given in _mapping(modes, "the table of Jobs").items():
        entry = _mapping(given, f"the Job of the mode {mode}")
        unknown = sorted(set(entry) - set(JOB_FIELDS))
        if unknown:
            raise AnsibleFilterError(f"the Job of the mode {mode} has unknown fields: {unknown}")
        job = {"database": False, "name": mode, "stamped": True, "timeout": timeout, **entry}
        if not isinstance(job.get("component"), str) or not job["component"]:
            raise AnsibleFilterError(f"the Job of the mode {mode} needs a component")
        for flag in ("database", "stamped"):
            if not isinstance(job[flag], bool):
                raise AnsibleFilterError(
                    f"{flag} of the Job of the mode {mode} must be true or false"
                )
        name = f"{prefix}-{job['name']}" + (f"-{stamp}" if job["stamped"] else "")
        derived[str(mode)] = {
            "mode": str(mode),
            "name": name,
            "component": job["component"],
            "database": job["database"],
            "timeout": job["timeout"],
        }
    return derived


def resources_of(found: object) -> list[Mapping[str, Any]]:
    """The objects of a k8s_info result (none when the API did not answer)."""
    resources = _mapping(found, "a kubernetes.core.k8s_info result").get("resources")
    if resources is None:
        return []
    if not isinstance(resources, Sequence) or isinstance(resources, str):
        raise AnsibleFilterError(f"the resources found must be a list, got {resources!r}")
    return [pod for pod in resources if isinstance(pod, Mapping)]


def _phase(pod: Mapping[str, Any]) -> str:
    return str(field(pod, "status", "phase") or "")


def pod_name(found: object, phases: Sequence[str] | None = None) -> str:
    """The name of the first pod, or of the first in one of phases; '' when there is none."""
    for pod in resources_of(found):
        if phases is None or _phase(pod) in phases:
            return str(field(pod, "metadata", "name") or "")
    return ""


def stuck(found: object) -> list[Mapping[str, Any]]:
    """The waiting states (reason, message) of the pods' containers that do not pass by
    themselves: the init containers' of every pod first, then the containers'."""
    pods = resources_of(found)
    statuses = [
        status
        for key in ("initContainerStatuses", "containerStatuses")
        for pod in pods
        for status in field(pod, "status", key) or []
    ]
    waiting = [field(status, "state", "waiting") for status in statuses]
    return [state for state in waiting if field(state, "reason") in STUCK_REASONS]


def stuck_text(found: object) -> str:
    """Why the pods cannot start: `reason, reason (first message)`; '' when they can."""
    states = stuck(found)
    if not states:
        return ""
    reasons = ", ".join(str(state["reason"]) for state in states)
    return f"{reasons} ({field(states[0], 'message') or ''})"


def settled(found: object, phases: Sequence[str]) -> bool:
    """Whether a pod is in one of phases, or one cannot start: the wait for it is over."""
    return any(_phase(pod) in phases for pod in resources_of(found)) or bool(stuck(found))


def json_lines(lines: Sequence[str]) -> list[dict[str, Any]]:
    """The lines that are JSON objects, parsed; other lines (a stack trace, a shell's error,
    a line cut off) are skipped."""
    parsed = []
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            parsed.append(value)
    return parsed


def said(lines: Sequence[str]) -> dict[str, Any]:
    """The tool's last line with a `result`; {} when there is none."""
    outcomes = [line for line in json_lines(lines) if "result" in line]
    return outcomes[-1] if outcomes else {}


def job_outcome(found: object, log: object, job: object) -> dict[str, Any]:
    """What the Job did: `outcome`, the tool's last line with a `result`, else a failure with
    reason `job` that says why the Job never got that far; and `printed`, the JSON lines the
    tool printed on stdout (those without a `level`).

    found is the k8s_info result for the Job's pods, log the k8s_log result of the first pod
    (skipped when there is none), job the Job's entry of backup_jobs (name, timeout)."""
    job = _mapping(job, "the Job")
    lines = result_lines(log, "log_lines")
    parsed = json_lines(lines)
    outcome = said(lines)
    if not outcome:
        outcome = {"result": "failed", "reason": "job", "message": _why(found, lines, job)}
    return {"outcome": outcome, "printed": [line for line in parsed if "level" not in line]}


def _why(found: object, lines: list[str], job: Mapping[str, Any]) -> str:
    name = job.get("name")
    cannot_start = stuck_text(found)
    if cannot_start:
        return f"The pod of the Job {name} cannot start: {cannot_start}."
    pods = resources_of(found)
    if not pods or _phase(pods[0]) not in ENDED:
        return f"The Job {name} did not finish within {job.get('timeout')} s."
    last = last_line(lines, "it left no log")
    return f"The Job {name} failed: {last}"


def upload_failure(verified: object, file: str, path: str, present: bool) -> str:
    """Why a file copied to the backup volume was not restorable there, or '' when it was.

    verified is the k8s_exec result of the command that verifies the copy with the tool and
    moves it to path (its stderr carries the tool's log), file the file on this host, present
    whether a file of the name of path was on the volume before (then the copy is not named)."""
    lines = result_lines(verified, "stderr_lines")
    outcome = said(lines)
    last = last_line(lines, "no output")
    result = outcome.get("result")
    if result == "refused":
        message = str(outcome.get("message", ""))
        prefix = "Verification failed: "
        if message.startswith(prefix):
            message = "Nothing was restored: " + message[len(prefix) :]
        return message
    if result != "done":
        why = outcome.get("message", last)
        return f"Nothing was restored: {file} could not be verified on the backup volume ({why})."
    if present:
        return (
            f"Nothing was restored: the backup volume already holds a different"
            f" {posixpath.basename(path)}; give the file on this host another name and run again."
        )
    if field(verified, "rc") != 0:
        return (
            f"Nothing was restored: {file} arrived whole and verified, but could not be named"
            f" {path} on the backup volume ({last})."
        )
    return ""


def cronjob(found: object) -> dict[str, str]:
    """What the backup CronJob in the cluster (a k8s_info result) says: its schedule, and the
    fingerprint of the manifests it was applied from; each '' when there is no CronJob or it
    has none."""
    objects = resources_of(found)
    first = objects[0] if objects else {}
    annotations = field(first, "metadata", "annotations")
    return {
        "schedule": str(field(first, "spec", "schedule") or ""),
        "fingerprint": str(field(annotations, FINGERPRINT_ANNOTATION) or ""),
    }
