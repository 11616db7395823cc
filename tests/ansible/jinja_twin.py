"""Evaluates a Jinja expression as a task would (ansible-core's templar, its own filters), so a
plugin's tests can compare it with the expression of a task it replaces."""

from typing import Any

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template


def jinja(expression: str, **variables: Any) -> Any:
    """The value of `{{ expression }}` with these variables."""
    templar = Templar(loader=DataLoader(), variables=variables)
    return templar.template(trust_as_template("{{ " + expression + " }}"))
