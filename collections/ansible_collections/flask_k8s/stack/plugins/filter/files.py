"""Jinja filters over the project's files: paths under a directory, a role's templates and the
manifests a configuration switches on, settings that name missing files, a value pinned in an
environment file, and digests that name what went into an image or a Job.

{{ ['app', 'lib'] | under(project_dir) }}                 ['<project_dir>/app', ...]
{{ ['service', 'hpa'] | manifest_templates }}            ['service.yaml.j2', 'hpa.yaml.j2']
{{ ['service', 'hpa'] | switched_on({'hpa': false}) }}   ['service']
{{ {'x_file': 'a/b'} | missing_files(project_dir) }}      ['x_file=<project_dir>/a/b'] if absent
{{ lookup('file', 'versions.env') | env_value('KUBE_ROUTER_VERSION') }}
{{ [inputs, version] | json_digest(12) }}                 12 hex characters of a SHA-256
{{ tree.files | content_tag(stats.results, base_id, project_dir, exclude) }}
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

# What a file whose checksum could not be read (a missing file, a directory) contributes.
ABSENT = "absent"
# What joins the lines of content_tag.
SEPARATOR = "\\n"


def _names(names: object, filter_name: str) -> list[str]:
    if isinstance(names, str | bytes | Mapping) or not isinstance(names, Iterable):
        raise AnsibleFilterError(f"{filter_name} takes a list of names, got {names!r}")
    return [str(name) for name in names]


def under(names: object, directory: str) -> list[str]:
    """Each of `names` (paths relative to `directory`) prefixed with `directory` and '/'."""
    return [f"{directory}/{name}" for name in _names(names, "under")]


def manifest_templates(names: object, directory: str = "") -> list[str]:
    """The template file of each manifest name, '<name>.yaml.j2', under `directory` if given."""
    prefix = f"{directory}/" if directory else ""
    return [f"{prefix}{name}.yaml.j2" for name in _names(names, "manifest_templates")]


def switched_on(names: object, switches: Mapping[str, object]) -> list[str]:
    """The manifest names a configuration applies: `names` in their order, less each whose
    switch in `switches` (a boolean setting, possibly a string from `-e`) is off. A name without
    a switch is always on."""
    if not isinstance(switches, Mapping):
        raise AnsibleFilterError(f"switched_on takes a map of switches, got {switches!r}")
    return [
        name
        for name in _names(names, "switched_on")
        if name not in switches or boolean(switches[name], strict=False)
    ]


def missing_files(settings: object, root: str) -> list[str]:
    """'<setting>=<root>/<path>' for each setting of `settings` (names to paths relative to
    `root`) whose path is not a file on this host, in the settings' order."""
    if not isinstance(settings, Mapping):
        raise AnsibleFilterError(
            f"missing_files takes a map of settings to paths, got {settings!r}"
        )
    paths = {name: f"{root}/{path}" for name, path in settings.items()}
    return [f"{name}={path}" for name, path in paths.items() if not os.path.isfile(path)]


def env_value(text: object, name: str) -> str:
    """The value of `name` in the text of an environment file: what follows 'NAME=' on the first
    line that starts with it, as written (quotes are not removed)."""
    if not isinstance(text, str):
        raise AnsibleFilterError(f"env_value takes the text of a file, got {text!r}")
    prefix = f"{name}="
    for line in text.splitlines():
        if line.startswith(prefix):
            return line.removeprefix(prefix)
    raise AnsibleFilterError(f"env_value: no line sets {name}")


def json_digest(value: object, length: int = 0) -> str:
    """The SHA-256 (hex) of `value` written as JSON (as the to_json filter writes it), its first
    `length` characters when given: a name that changes when any of the values does."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError) as error:
        raise AnsibleFilterError(f"json_digest takes JSON values: {error}") from None
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return digest[:length] if length else digest


def _checksum(entry: Mapping) -> str:
    checksum = entry.get("checksum")
    return checksum if isinstance(checksum, str) and checksum else ABSENT


def content_tag(
    tree_files: object,
    file_results: object,
    base_id: str,
    root: str,
    exclude: Iterable[str] = (),
) -> str:
    """A 12-character tag that changes with the content of an image: the SHA-256 of the sorted
    lines '<path relative to root> <checksum>' of `tree_files` (the `files` of
    ansible.builtin.find with get_checksum), '<name> <checksum>' of `file_results` (the
    `results` of ansible.builtin.stat in a loop over the names, 'absent' for a file without a
    checksum), and the base image's `base_id`. Files under a directory named in `exclude` are
    left out of the tree."""
    if not isinstance(tree_files, list) or not isinstance(file_results, list):
        raise AnsibleFilterError("content_tag takes the files of find and the results of stat")
    skipped = tuple(f"/{name}/" for name in exclude)
    lines = []
    for entry in tree_files:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("path"), str):
            raise AnsibleFilterError(f"content_tag: a file of find without a path: {entry!r}")
        if any(part in entry["path"] for part in skipped):
            continue
        lines.append(f"{os.path.relpath(entry['path'], root)} {_checksum(entry)}")
    for result in file_results:
        name = (
            result.get(result.get("ansible_loop_var", "item"))
            if isinstance(result, Mapping)
            else None
        )
        if name is None:
            raise AnsibleFilterError(f"content_tag: a result of stat without its file: {result!r}")
        stat = result.get("stat")
        lines.append(f"{name} {_checksum(stat if isinstance(stat, Mapping) else {})}")
    lines.append(str(base_id))
    # Sorted as Jinja's sort filter sorts strings (ignoring case, stable), and joined by a
    # backslash and an 'n', not a newline: the tags of images built before stay the same.
    text = SEPARATOR.join(sorted(lines, key=str.lower))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def attempts(timeout: object, delay: object) -> int:
    """How many attempts `delay` seconds apart fill `timeout` seconds (rounded up), for a task's
    `retries`."""
    try:
        # Whole seconds, as the int filter reads the setting.
        seconds, interval = int(float(str(timeout))), float(str(delay))
    except ValueError:
        raise AnsibleFilterError(f"attempts takes numbers, got {timeout!r} and {delay!r}") from None
    if interval <= 0:
        raise AnsibleFilterError(f"attempts needs a delay above 0, got {delay!r}")
    return max(0, math.ceil(seconds / interval))


class FilterModule:
    def filters(self) -> dict[str, Callable[..., object]]:
        return {
            "under": under,
            "manifest_templates": manifest_templates,
            "switched_on": switched_on,
            "missing_files": missing_files,
            "env_value": env_value,
            "json_digest": json_digest,
            "content_tag": content_tag,
            "attempts": attempts,
        }
