"""as_type: a setting read as its option's type, the way the check_settings action reads it.

`-e name=value` gives every value as a string. A role reads its map and list options through
this filter, so the value it uses is the value its checks accepted: JSON (or YAML) for a map
or a list, or for a list, names separated by commas (blank items dropped, each one stripped).

{{ mongodb_resources | flask_k8s.stack.as_type('dict') }}
{{ local_cluster_packages | flask_k8s.stack.as_type('list') }}
"""

from __future__ import annotations

from collections.abc import Callable

from ansible.errors import AnsibleFilterError
from ansible_collections.flask_k8s.stack.plugins.plugin_utils.settings import as_type

_KINDS = ("dict", "list")


def setting_as_type(value: object, kind: str) -> object:
    """The value as a map or a list. A value that is not one is returned as it is, for the
    role's checks to report with the option's name."""
    if kind not in _KINDS:
        raise AnsibleFilterError(f"as_type reads one of {', '.join(_KINDS)}, not {kind!r}")
    return as_type(kind, value)


class FilterModule:
    def filters(self) -> dict[str, Callable[..., object]]:
        return {"as_type": setting_as_type}
