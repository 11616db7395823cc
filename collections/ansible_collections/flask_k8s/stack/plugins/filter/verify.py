"""verify_plan: which of verify.yml's checks run, from its catalog and the user's choice.

{{ verify_catalog | flask_k8s.stack.verify_plan(verify_only, verify_disruptive) }}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean


def _chosen(only: object) -> list[str]:
    if isinstance(only, str):
        return [name.strip() for name in only.split(",") if name.strip()]
    if isinstance(only, Mapping) or not isinstance(only, Iterable):
        raise AnsibleFilterError(f"verify_plan takes the checks' names, got {only!r}")
    return [str(name) for name in only]


def verify_plan(catalog: object, only: object, disruptive: object) -> dict[str, list[str]]:
    """The plan of a verify run. `catalog` maps each check's name to its properties ('disrupts':
    what it does to the service, for the checks that disrupt it); `only` is the checks chosen, a
    list or names separated by commas (as `-e` gives them); `disruptive` (a boolean setting)
    lets the disruptive checks run.

    Returns 'selected' (the names chosen, in the user's order), 'unknown' (those of them the
    catalog lacks, each once), 'runs' (the checks that run: all selected when disruptive, else
    the selected ones that do not disrupt, in the catalog's order) and 'plan' (one line per
    check of the catalog: '<name>: runs' or why it is skipped)."""
    if not isinstance(catalog, Mapping):
        raise AnsibleFilterError(f"verify_plan takes the catalog of checks, got {catalog!r}")
    selected = _chosen(only)
    unknown = list(dict.fromkeys(name for name in selected if name not in catalog))
    if boolean(disruptive, strict=False):
        runs = selected
    else:
        runs = [
            name
            for name, check in catalog.items()
            if name in selected and not (isinstance(check, Mapping) and "disrupts" in check)
        ]
    plan = []
    for name, check in catalog.items():
        if name in runs:
            why = "runs"
        elif name not in selected:
            why = "skipped, not in verify_only"
        else:
            disrupts = check.get("disrupts") if isinstance(check, Mapping) else None
            why = f"skipped, it {disrupts} (verify_disruptive=true runs it)"
        plan.append(f"{name}: {why}")
    return {"selected": selected, "unknown": unknown, "runs": runs, "plan": plan}


class FilterModule:
    def filters(self) -> dict[str, Callable[..., object]]:
        return {"verify_plan": verify_plan}
