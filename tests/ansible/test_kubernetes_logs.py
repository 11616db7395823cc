"""The filters over logs and conditions the verify plays read (k8s_log_tail, k8s_log_json,
k8s_condition_reasons), each compared with the Jinja expression the plays used before, as
Ansible renders it."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.flask_k8s.stack.plugins.filter.kubernetes import (
    k8s_condition_reasons,
    k8s_log_json,
    k8s_log_tail,
)
from ansible_support import jinja

SUMMARY = '{"mode": "paced", "requests": 300, "errors": 0, "missed": 0}'
LOGS = [
    {"log_lines": ["starting", '{"progress": 1}', "tick", SUMMARY, ""]},
    {"log_lines": ["starting", SUMMARY, "Traceback (most recent call last):", "  boom"]},
    {"log_lines": ["a", "", "b", "c", "d", "e", "f", "g"]},
    {"log_lines": ["", ""]},
    {"log_lines": []},
    {"failed": True, "msg": "pods not found"},
    {},
]
TAIL = "{{ (log.log_lines | default([]) | select | list)[-5:] }}"
SUMMARY_EXPRESSION = (
    "{{ (log.log_lines | default([]) | select('match', '^\\{') | list | last"
    " | default('{}', true)) | from_json }}"
)
PROBE_EXPRESSION = "{{ log.log_lines | select('match', '^\\{') | last | from_json }}"


@pytest.mark.parametrize("log", LOGS)
def test_log_tail_is_the_one_the_jinja_expression_took(log: dict) -> None:
    assert k8s_log_tail(log, 5) == jinja(TAIL, log=log)


def test_log_tail_counts() -> None:
    log = {"log_lines": ["a", "b", "c"]}
    assert k8s_log_tail(log, 1) == ["c"]
    assert k8s_log_tail(log, 10) == ["a", "b", "c"]
    assert k8s_log_tail(log, 0) == []
    assert k8s_log_tail(None, 5) == []
    assert k8s_log_tail({"log_lines": "a line"}, 5) == []


@pytest.mark.parametrize("log", LOGS)
def test_log_json_with_a_default_is_what_the_load_check_read(log: dict) -> None:
    assert k8s_log_json(log, {}) == jinja(SUMMARY_EXPRESSION, log=log)


@pytest.mark.parametrize("log", LOGS[:2])
def test_log_json_is_what_the_probe_check_read(log: dict) -> None:
    assert k8s_log_json(log) == jinja(PROBE_EXPRESSION, log=log)


@pytest.mark.parametrize("log", LOGS[2:])
def test_log_json_without_a_line_of_json_and_a_default_is_an_error(log: dict) -> None:
    with pytest.raises(AnsibleFilterError, match="the log has no line of JSON"):
        k8s_log_json(log)


@pytest.mark.parametrize("line", ['{"mode": "paced", "requ', "{not json}", "{"])
def test_log_json_of_a_broken_line_is_an_error(line: str) -> None:
    with pytest.raises(AnsibleFilterError, match="is not JSON"):
        k8s_log_json({"log_lines": [SUMMARY, line]}, {})


def test_log_json_reads_any_json_value_after_a_brace() -> None:
    assert k8s_log_json({"log_lines": ['{"a": [1, 2]}', "done"]}) == {"a": [1, 2]}


REASONS = """{{ jobs | default([]) | map(attribute='status.conditions', default=[]) | flatten
   | map(attribute='reason', default='') | join(', ') | default('without conditions', true) }}"""
JOB_FAILED = {
    "status": {
        "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded"},
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"},
        ]
    }
}


@pytest.mark.parametrize(
    "jobs",
    [
        [JOB_FAILED],
        [{"status": {"conditions": [{"type": "Complete", "status": "True"}]}}],
        [{"status": {"active": 1}}],
        [{"status": {}}, JOB_FAILED],
        [{"metadata": {"name": "x"}}],
        [],
    ],
)
def test_condition_reasons_are_the_ones_the_message_named(jobs: list) -> None:
    text = ", ".join(k8s_condition_reasons(jobs)) or "without conditions"
    assert text == jinja(REASONS, jobs=jobs)


def test_condition_reasons_of_odd_objects() -> None:
    assert k8s_condition_reasons(None) == []
    assert k8s_condition_reasons({"status": {}}) == []
    assert k8s_condition_reasons([None, {"status": {"conditions": ["x", {"reason": 3}]}}]) == [
        "",
        "3",
    ]
