"""Action plugin of flask_k8s.stack.check_settings: check a role's settings against the `checks`
of its argument spec, and the role's own rules, in one message with a line per setting."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

import yaml
from ansible.errors import AnsibleUndefinedVariable
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible_collections.flask_k8s.stack.plugins.plugin_utils.settings import (
    accepts,
    as_type,
    bound_setting,
    bound_value,
    describe,
    errors,
)


def _shown(value: object) -> str:
    if isinstance(value, Mapping | list):
        return json.dumps(value, sort_keys=True)
    return f"'{value}'"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("rules", "argument_spec"))
    _requires_connection = False

    def run(self, tmp: object = None, task_vars: dict | None = None) -> dict:
        result = super().run(tmp, task_vars)
        options = self._task.args.get("argument_spec") or self._role_options(task_vars or {})
        if options is None:
            return {
                **result,
                "failed": True,
                "msg": "check_settings runs in a role, or names argument_spec.",
            }
        rules = self._task.args.get("rules") or []
        if not isinstance(rules, list) or not all(
            isinstance(rule, Mapping) and {"ok", "msg"} <= set(rule) for rule in rules
        ):
            return {**result, "failed": True, "msg": "rules must be a list of {ok, msg}."}
        checked = {name: option for name, option in options.items() if (option or {}).get("checks")}
        malformed = [
            error
            for name, option in checked.items()
            for error in errors(name, option.get("type", "str"), option["checks"])
        ]
        if malformed:
            return {**result, "failed": True, "msg": "Malformed checks: " + "; ".join(malformed)}
        problems = [
            problem for name, option in checked.items() if (problem := self._problem(name, option))
        ]
        problems += [
            str(rule["msg"]).strip() for rule in rules if not boolean(rule["ok"], strict=False)
        ]
        if problems:
            return {**result, "failed": True, "msg": "\n".join(problems)}
        summary = f"{len(checked)} settings and {len(rules)} rules checked."
        return {**result, "changed": False, "msg": summary}

    @staticmethod
    def _role_options(task_vars: dict) -> dict | None:
        role_path = task_vars.get("role_path")
        if not role_path:
            return None
        with open(os.path.join(role_path, "meta", "argument_specs.yml"), encoding="utf-8") as spec:
            return yaml.safe_load(spec)["argument_specs"]["main"]["options"]

    def _problem(self, name: str, option: Mapping) -> str:
        """The sentence that says what is wrong with the setting, or ''."""
        kind, checks = option.get("type", "str"), option["checks"]
        try:
            value = self._templar.resolve_variable_expression(name)
            # The bounds that name a setting, from its value read as the option's type.
            resolve = self._templar.resolve_variable_expression
            bounds = {
                bound: bound_value(bound, as_type(kind, resolve(bound_setting(bound)[0])))
                for bound in (checks.get("min"), checks.get("max"))
                if isinstance(bound, str)
            }
        except AnsibleUndefinedVariable:
            # A value another role computes later (the image a build names): checked once known.
            return ""
        if accepts(kind, checks, as_type(kind, value), bounds):
            return ""
        # A secret's value never shows (no_log in the argument spec): only that it is wrong.
        got = "a value that is not shown" if option.get("no_log") else _shown(value)
        return f"{name} must be {describe(kind, checks, bounds)}, got {got}."
