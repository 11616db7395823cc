"""Jinja filters over commands and their results, for tasks that run a program.

{{ 'minikube' | find_on_path(lookup('ansible.builtin.env', 'PATH')) }}   the first file, or ''
{{ [script, '--minikube', 'all'] | shell_join }}                        one shell command line
{{ result | result_last_line('stderr', '?') }}                            the last line it wrote
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping

from ansible.errors import AnsibleFilterError


def find_on_path(name: str, path: str) -> str:
    """The first `<directory>/<name>` that is a file, for the directories of a PATH value in
    order (an empty entry gives `/<name>`, as it is joined, not resolved), or '' when none is."""
    if not isinstance(name, str) or not name:
        raise AnsibleFilterError(f"find_on_path needs a file name, got {name!r}")
    if not isinstance(path, str):
        raise AnsibleFilterError(f"find_on_path needs a PATH string, got {path!r}")
    for directory in path.split(":"):
        candidate = f"{directory}/{name}"
        if os.path.isfile(candidate):
            return candidate
    return ""


def shell_join(argv: list[object]) -> str:
    """The arguments as one shell command line, each quoted as Ansible's `quote` quotes it
    (None as an empty argument)."""
    if isinstance(argv, str | bytes) or not isinstance(argv, list | tuple):
        raise AnsibleFilterError(f"shell_join needs a list of arguments, got {argv!r}")
    return " ".join(shlex.quote("" if arg is None else str(arg)) for arg in argv)


def result_last_line(
    result: Mapping[str, object], stream: str = "stdout", default: str = ""
) -> str:
    """The last line a command task's registered result wrote to `stream` (stdout or stderr),
    or `default` when it wrote none (or did not run)."""
    if not isinstance(result, Mapping):
        raise AnsibleFilterError(f"result_last_line needs a registered result, got {result!r}")
    if stream not in ("stdout", "stderr"):
        raise AnsibleFilterError(f"result_last_line reads stdout or stderr, not {stream!r}")
    lines = result.get(f"{stream}_lines")
    if not lines:
        return default
    if not isinstance(lines, list):
        raise AnsibleFilterError(f"the result's {stream}_lines is not a list: {lines!r}")
    return str(lines[-1])


class FilterModule:
    def filters(self) -> dict[str, Callable[..., object]]:
        return {
            "find_on_path": find_on_path,
            "shell_join": shell_join,
            "result_last_line": result_last_line,
        }
