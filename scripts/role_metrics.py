#!/usr/bin/env python3
"""Print how much logic the roles write in Jinja, for comparison with other Ansible codebases.

For the roles under a directory (default: the project's), it counts the Jinja filters in each
expression (inside {{ }} and {% %}, and the bare expressions of when, that, changed_when,
failed_when and until) and the non-blank lines of tasks (handlers included), vars and
defaults files. It prints filters per 100 lines, the expressions with 4 or more filters, the
ratio of vars/ to defaults/ lines, and the files with the most filters.

    scripts/role_metrics.py                  this project's roles
    scripts/role_metrics.py PATH/roles --top 10
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import yaml

FILTER = re.compile(r"(?<![|])\|(?![|])\s*[A-Za-z_][\w.]*")
JINJA = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.S)
BARE = {"when", "that", "changed_when", "failed_when", "until"}
KINDS = {"tasks": "tasks", "handlers": "tasks", "vars": "vars", "defaults": "defaults"}


class _Loader(yaml.SafeLoader):
    """Reads tagged values (!unsafe, !vault) as plain scalars."""


_Loader.add_multi_constructor(
    "!",
    lambda loader, _suffix, node: (
        loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None
    ),
)


def expressions(node: object, bare: bool = False) -> Iterator[str]:
    """The Jinja expressions of a loaded YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from expressions(value, key in BARE)
    elif isinstance(node, list):
        for value in node:
            yield from expressions(value, bare)
    elif isinstance(node, str):
        if bare and "{{" not in node:
            yield node
        else:
            yield from (match.group(1) or match.group(2) or "" for match in JINJA.finditer(node))


def lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip() and line.strip() != "---")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "roles",
        nargs="?",
        type=Path,
        default=Path(__file__).resolve().parent.parent
        / "collections/ansible_collections/flask_k8s/stack"
        / "roles",
    )
    parser.add_argument("--top", type=int, default=15, help="how many files to list (default 15)")
    args = parser.parse_args()
    totals: Counter[str] = Counter()
    files: list[tuple[int, int, str]] = []
    for path in sorted(args.roles.glob("*/*/**/*.yml")):
        kind = KINDS.get(path.relative_to(args.roles).parts[1])
        if kind is None:
            continue
        text = path.read_text()
        counts = [
            len(FILTER.findall(expression))
            for expression in expressions(yaml.load(text, Loader=_Loader))  # noqa: S506 (a SafeLoader)
        ]
        totals[f"{kind} lines"] += lines(text)
        totals[f"{kind} filters"] += sum(counts)
        totals["4+ filters"] += sum(1 for count in counts if count >= 4)
        files.append((sum(counts), lines(text), str(path.relative_to(args.roles))))
    data_lines = totals["vars lines"] + totals["defaults lines"]
    data_filters = totals["vars filters"] + totals["defaults filters"]
    task_lines, task_filters = totals["tasks lines"], totals["tasks filters"]
    rows = [
        (
            "filters per 100 lines, tasks",
            f"{100 * task_filters / max(task_lines, 1):.1f}",
            f"{task_filters} in {task_lines}",
        ),
        (
            "filters per 100 lines, vars + defaults",
            f"{100 * data_filters / max(data_lines, 1):.1f}",
            f"{data_filters} in {data_lines}",
        ),
        ("expressions with 4+ filters", str(totals["4+ filters"]), ""),
        (
            "vars : defaults lines",
            f"{totals['vars lines'] / max(totals['defaults lines'], 1):.2f}",
            f"{totals['vars lines']} : {totals['defaults lines']}",
        ),
    ]
    for label, value, detail in rows:
        print(f"{label + ':':40} {value:>6}  {detail}".rstrip())
    for filters, count, name in sorted(files, reverse=True)[: args.top]:
        print(f"{filters:5d} filters {count:5d} lines  {name}")


if __name__ == "__main__":
    main()
