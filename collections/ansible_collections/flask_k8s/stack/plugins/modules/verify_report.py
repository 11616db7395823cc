#!/usr/bin/python
"""Ansible module: write the verification report and its autoscaling chart."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: verify_report
short_description: Write the Markdown report and PNG chart of playbooks/verify.yml
description:
  - Writes C(report.md) into O(dest) with one section a check, and, when O(samples) is not
    empty, C(autoscaling.png), the replicas and CPU utilisation over time during the load.
options:
  dest:
    description: Directory to write into; created when missing.
    type: path
    required: true
  title:
    description: Heading of the report.
    type: str
    default: Deployment verification
  checks:
    description: One entry a check, with keys name, passed (bool) and details (list of str).
    type: list
    elements: dict
    required: true
  samples:
    description: Samples returned by the hpa_watch module during the load.
    type: list
    elements: dict
    default: []
  target_cpu_percent:
    description: CPU target of the autoscaler, drawn as a line on the chart.
    type: int
  load_window:
    description: Seconds from the first sample when the load started and stopped, if known.
    type: list
    elements: float
    default: []
requirements:
  - matplotlib
author: flask-k8s maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Write the report
  flask_k8s.stack.verify_report:
    dest: reports/verify-20261126T040000Z
    checks:
      - name: Smoke
        passed: true
        details: ["GET / answered 200"]
    samples: "{{ scaling.samples }}"
    target_cpu_percent: 70
"""

RETURN = r"""
report:
  description: Path of the Markdown report.
  type: str
  returned: always
chart:
  description: Path of the PNG chart, when samples were given.
  type: str
  returned: when samples were given
"""

import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    HAS_MATPLOTLIB = True
except ImportError:
    HAS_MATPLOTLIB = False


def _chart(path: str, samples: list[dict[str, Any]], target: int | None, window: list) -> None:
    times = [sample["t"] for sample in samples]
    figure, replicas_axis = pyplot.subplots(figsize=(9, 4.5), dpi=100)
    replicas_axis.step(
        times,
        [sample["current_replicas"] for sample in samples],
        where="post",
        color="tab:blue",
        label="replicas",
    )
    replicas_axis.step(
        times,
        [sample.get("ready_replicas") for sample in samples],
        where="post",
        color="tab:green",
        linestyle=":",
        label="ready",
    )
    replicas_axis.set_xlabel("seconds since the load started")
    replicas_axis.set_ylabel("replicas", color="tab:blue")
    replicas_axis.set_ylim(bottom=0, top=max(s["current_replicas"] for s in samples) + 1)
    cpu_axis = replicas_axis.twinx()
    cpu_axis.plot(
        times,
        [sample["cpu_percent"] for sample in samples],
        color="tab:red",
        marker=".",
        label="CPU % of request",
    )
    cpu_axis.set_ylabel("average CPU utilisation (% of request)", color="tab:red")
    cpu_axis.set_ylim(bottom=0)
    replicas_axis.yaxis.get_major_locator().set_params(integer=True)
    if target is not None:
        cpu_axis.axhline(target, color="tab:red", linestyle="--", linewidth=1, label="target")
    if len(window) == 2:
        replicas_axis.axvspan(window[0], window[1], color="0.9", label="load")
    handles = replicas_axis.get_legend_handles_labels()
    cpu_handles = cpu_axis.get_legend_handles_labels()
    replicas_axis.legend(handles[0] + cpu_handles[0], handles[1] + cpu_handles[1], loc="best")
    replicas_axis.set_title("HorizontalPodAutoscaler under load")
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def _markdown(title: str, checks: list[dict[str, Any]], samples: list[dict[str, Any]]) -> str:
    lines = [f"# {title}", "", "| check | result |", "| --- | --- |"]
    lines += [f"| {c['name']} | {'PASS' if c['passed'] else 'FAIL'} |" for c in checks]
    for check in checks:
        lines += ["", f"## {check['name']}: {'PASS' if check['passed'] else 'FAIL'}", ""]
        lines += [f"- {detail}" for detail in check.get("details", [])]
    if samples:
        lines += ["", "## Autoscaling samples", "", "![replicas and CPU](autoscaling.png)", ""]
        lines += [
            "Replicas and ready pods are read from the Deployment at the time of each sample;",
            "desired is the autoscaler's own figure, updated at its sync period.",
            "",
            "| t (s) | replicas | desired | ready | CPU % |",
            "| --- | --- | --- | --- | --- |",
        ]
        for s in samples:
            cpu = "unknown" if s["cpu_percent"] is None else s["cpu_percent"]
            ready = "" if s.get("ready_replicas") is None else s["ready_replicas"]
            row = [s["t"], s["current_replicas"], s["desired_replicas"], ready, cpu]
            lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "title": {"type": "str", "default": "Deployment verification"},
            "checks": {"type": "list", "elements": "dict", "required": True},
            "samples": {"type": "list", "elements": "dict", "default": []},
            "target_cpu_percent": {"type": "int"},
            "load_window": {"type": "list", "elements": "float", "default": []},
        },
        supports_check_mode=False,
    )
    params = module.params
    for check in params["checks"]:
        if "name" not in check or not isinstance(check.get("passed"), bool):
            module.fail_json(msg=f"each check needs a name and a boolean passed: {check!r}")
    os.makedirs(params["dest"], mode=0o755, exist_ok=True)
    report = os.path.join(params["dest"], "report.md")
    with open(report, "w", encoding="utf-8") as handle:
        handle.write(_markdown(params["title"], params["checks"], params["samples"]))
    result: dict[str, Any] = {"changed": True, "report": report}
    if params["samples"]:
        if not HAS_MATPLOTLIB:
            module.fail_json(msg=missing_required_lib("matplotlib"), report=report)
        chart = os.path.join(params["dest"], "autoscaling.png")
        _chart(chart, params["samples"], params["target_cpu_percent"], params["load_window"])
        result["chart"] = chart
    module.exit_json(**result)


if __name__ == "__main__":
    main()
