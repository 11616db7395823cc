"""Jinja tests over mappings, for the rules that relate a role's settings to another role's
output.

{{ flaskapp_database_map is flask_k8s.stack.mapping_with(['host', 'port']) }}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping


def mapping_with(value: object, keys: Iterable[object]) -> bool:
    """Whether `value` is a mapping that has every one of `keys`."""
    return isinstance(value, Mapping) and all(key in value for key in keys)


class TestModule:
    def tests(self) -> dict[str, Callable[..., bool]]:
        return {"mapping_with": mapping_with}
