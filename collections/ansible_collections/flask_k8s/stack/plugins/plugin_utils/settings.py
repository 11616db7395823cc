"""The `checks` of an option in a role's argument spec: what they accept, in the words of a
message or a table of settings, and whether a value is of it.

The check_settings action applies them to a role's settings; scripts/role_docs.py writes
`describe` into the generated tables; the override tests derive their boundary cases from them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import yaml
from ansible.module_utils.common.validation import check_type_float, check_type_int
from ansible_collections.flask_k8s.stack.plugins.plugin_utils.formats import FORMATS

# What each key of an option's `checks` holds.
KEYS = {
    "min": "the least number accepted, or the setting that is ('name' or 'name - 1')",
    "max": "the greatest number accepted, or the setting that is ('name' or 'name - 1')",
    "off_value": "a number also accepted, that switches the setting off",
    "format": "one of the formats of plugin_utils/formats.py",
    "pattern": "a regular expression a value must contain a match of (with means)",
    "min_length": "the fewest characters (or items) accepted",
    "max_length": "the most characters (or items) accepted",
    "empty": "true: the empty string is accepted too",
    "means": "what is accepted, in the words of a message, instead of the generated ones",
    "note": "a few words a message adds in parentheses",
}


# A bound that names a setting: its name, and an integer the bound is less than its value.
BOUND = re.compile(r"^([a-z][a-z0-9_]*)(?: - ([0-9]+))?$")


def bound_setting(bound: str) -> tuple[str, int]:
    """The setting a bound names and how much less than its value the bound is:
    'flaskapp_tls_days - 1' gives ('flaskapp_tls_days', 1). ValueError when it names none."""
    match = BOUND.fullmatch(bound)
    if match is None:
        raise ValueError(f"a bound that is not a setting's name (or 'name - 1'): {bound!r}")
    return match.group(1), int(match.group(2) or 0)


def bound_value(bound: str, value: object) -> object:
    """The bound's number given the value of the setting it names (read as the option's type);
    None when that value is not a number."""
    offset = bound_setting(bound)[1]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value - offset


def errors(name: str, kind: str, checks: Mapping) -> list[str]:
    """What is wrong with the checks of option `name` of type `kind` ([] when nothing is)."""
    found = [f"{name}: unknown key {key}" for key in sorted(set(checks) - set(KEYS))]
    numeric = {"min", "max", "off_value"} & set(checks)
    if kind in ("int", "float"):
        if not {"min", "max"} <= set(checks):
            found.append(f"{name}: a number's checks give its min and its max")
    elif numeric:
        found.append(f"{name}: min, max and off_value are for int and float options")
    for key in ("min", "max"):
        bound = checks.get(key)
        if isinstance(bound, str) and BOUND.fullmatch(bound) is None:
            found.append(f"{name}: {key} names no setting (a name, or 'name - 1')")
    if "format" in checks and checks["format"] not in FORMATS:
        found.append(f"{name}: no format is called {checks['format']}")
    if "pattern" in checks:
        if "means" not in checks:
            found.append(f"{name}: a pattern needs its means")
        try:
            re.compile(checks["pattern"])
        except (re.error, TypeError):
            found.append(f"{name}: the pattern is not a regular expression")
    if kind not in ("int", "float") and not set(checks) & {
        "format",
        "pattern",
        "min_length",
        "max_length",
        "means",
    }:
        found.append(f"{name}: the checks check nothing")
    return found


def as_type(kind: str, value: object) -> object:
    """A number, a map or a list given as a string, the way `-e name=value` gives it, read as
    the option's type: JSON (or YAML) for a map or a list, or for a list not written as JSON
    (nor as a map, which is refused as one), items separated by commas. None when a number is
    not one."""
    if kind in ("int", "float"):
        if isinstance(value, bool):
            return None
        try:
            return check_type_int(value) if kind == "int" else check_type_float(value)
        except TypeError:
            return None
    if not isinstance(value, str) or kind not in ("dict", "list"):
        return value
    if kind == "list" and not value.lstrip().startswith(("[", "{")):
        return [item.strip() for item in value.split(",") if item.strip()]
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def _bound_text(bound: object, bounds: Mapping) -> str:
    if isinstance(bound, str):
        return f"{bound} ({bounds[bound]})" if bounds.get(bound) is not None else bound
    return str(bound)


def describe(kind: str, checks: Mapping, bounds: Mapping | None = None) -> str:
    """What the option accepts: "an integer from 1 to 50", "empty or an absolute path". A bound
    that names another setting shows its number when `bounds` has one."""
    bounds = bounds or {}
    note = f" ({checks['note']})" if "note" in checks else ""
    if "means" in checks:
        return f"{checks['means']}{note}"
    if kind in ("int", "float"):
        noun = "an integer" if kind == "int" else "a number"
        low, high = _bound_text(checks["min"], bounds), _bound_text(checks["max"], bounds)
        means = f"{noun} from {low} to {high}"
    else:
        parts = [FORMATS[checks["format"]].meaning] if "format" in checks else []
        if "min_length" in checks and "format" not in checks:
            parts.append(f"at least {checks['min_length']} characters long")
        if "max_length" in checks:
            parts.append(f"of at most {checks['max_length']} characters")
        means = " ".join(parts)
    if "off_value" in checks:
        means = f"{checks['off_value']} (off) or {means}"
    if checks.get("empty"):
        means = f"empty or {means}"
    return f"{means}{note}"


def accepts(kind: str, checks: Mapping, value: object, bounds: Mapping | None = None) -> bool:
    """Whether `value` (already read as the option's type) is of what the checks accept;
    `bounds` holds the values of the settings that bounds name."""
    bounds = bounds or {}
    if "off_value" in checks and value == checks["off_value"]:
        return True
    if checks.get("empty") and value == "":
        return True
    if kind in ("int", "float"):
        low, high = (
            bounds.get(bound) if isinstance(bound, str) else bound
            for bound in (checks["min"], checks["max"])
        )
        return value is not None and low is not None and high is not None and low <= value <= high
    ok = True
    if "format" in checks:
        ok = FORMATS[checks["format"]].test(value)
    if "pattern" in checks:
        # A pattern's $ also matches before a final newline, which no setting ends with.
        ok = (
            ok
            and isinstance(value, str)
            and not value.endswith("\n")
            and re.search(checks["pattern"], value) is not None
        )
    length = len(value) if isinstance(value, str | list | Mapping) else 0
    if "min_length" in checks:
        ok = ok and length >= checks["min_length"]
    if "max_length" in checks:
        ok = ok and length <= checks["max_length"]
    return ok
