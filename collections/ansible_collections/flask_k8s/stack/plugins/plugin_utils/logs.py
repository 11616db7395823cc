"""The lines a kubernetes.core module registers (k8s_log's log_lines, k8s_exec's stderr_lines),
and the last of them that says something: the filters over logs share these.

A caller says how strict to be. Where the lines carry what a program did (the backup tool's
outcome), a result of another shape is an error: it is the role's fault, and reading it as no
log would report a Job as failed for no reason. Where they only explain a failure already
found, it reads as no lines: an error there would hide the failure it was to explain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ansible.errors import AnsibleFilterError


def result_lines(result: object, key: str, strict: bool = True) -> list[str]:
    """The lines under `key` of a module's registered result; none when the module was skipped
    or failed before it had any (no `key`, or None).

    strict: a result that is not a mapping, lines that are not a list, or a line that is not
    text are an error (AnsibleFilterError). Else the first two read as no lines, and every line
    but None is taken as text."""
    if not isinstance(result, Mapping):
        if strict:
            raise AnsibleFilterError(
                f"the registered result must be a mapping, got {type(result).__name__}"
            )
        return []
    lines = result.get(key)
    if lines is None:
        return []
    if not isinstance(lines, Sequence) or isinstance(lines, (str, bytes)):
        if strict:
            raise AnsibleFilterError(f"{key} must be a list of lines, got {lines!r}")
        return []
    if not strict:
        return [str(line) for line in lines if line is not None]
    if not all(isinstance(line, str) for line in lines):
        raise AnsibleFilterError(f"{key} must be a list of lines, got {lines!r}")
    return list(lines)


def last_line(lines: Sequence[str], default: str) -> str:
    """The last line that is not empty, as it is (a line of spaces counts); `default` when there
    is none."""
    return next((line for line in reversed(lines) if line), default)
