"""The k8s_last_log_line filter and the k8s_condition test over a Job and its log, each compared
with the Jinja expression the mongodb role used before, as Ansible renders it."""

import pytest
from ansible_collections.flask_k8s.stack.plugins.filter.kubernetes import k8s_last_log_line
from ansible_collections.flask_k8s.stack.plugins.test.kubernetes import k8s_condition
from ansible_support import jinja

LOG_EXPRESSION = """{{ (log.log_lines | default(['no log available']) | select | list | last)
   | default('no log available') }}"""


@pytest.mark.parametrize(
    "log",
    [
        {"log_lines": ["connecting", "user flask created", ""], "log": "..."},
        {"log_lines": ["only line"]},
        {"log_lines": ["", ""]},
        {"log_lines": []},
        {"log_lines": ['error: {"ok": 0}', "  "]},
        # A failed read (no pod yet) registers no lines.
        {"failed": True, "msg": "Pod not found"},
        {},
    ],
)
def test_last_log_line_is_the_one_the_jinja_expression_chose(log: dict) -> None:
    assert k8s_last_log_line(log, "no log available") == jinja(LOG_EXPRESSION, log=log)


@pytest.mark.parametrize("log", [None, "text", ["a"], {"log_lines": "a line"}, {"log_lines": None}])
def test_last_log_line_of_no_log_is_the_default(log: object) -> None:
    assert k8s_last_log_line(log, "none") == "none"


def test_last_log_line_is_text() -> None:
    assert k8s_last_log_line({"log_lines": ["a", 3, None]}, "none") == "3"


CONDITION_EXPRESSION = """{{ job.status.conditions | default([], true)
   | selectattr('type', 'equalto', 'Failed') | selectattr('status', 'equalto', 'True')
   | list | length > 0 }}"""
FAILED = {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}


@pytest.mark.parametrize(
    "job",
    [
        {"metadata": {"name": "p"}, "status": {"conditions": [FAILED]}},
        {"status": {"conditions": [{"type": "Complete", "status": "True"}]}},
        {"status": {"conditions": [{"type": "Failed", "status": "False"}]}},
        {"status": {"conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, FAILED]}},
        {"status": {"conditions": []}},
        {"status": {"conditions": None}},
        {"status": {"active": 1}},
        {"status": {}},
    ],
)
def test_condition_is_what_the_jinja_expression_found(job: dict) -> None:
    assert k8s_condition(job, "Failed") == jinja(CONDITION_EXPRESSION, job=job)


@pytest.mark.parametrize(
    "job",
    [
        {},
        None,
        "Failed",
        {"status": "Failed"},
        {"status": {"conditions": "Failed"}},
        {"status": {"conditions": ["Failed", None, {"type": "Failed"}]}},
        {"status": {"conditions": [{"type": "Failed", "status": True}]}},
    ],
)
def test_condition_of_no_such_condition_is_false(job: object) -> None:
    assert k8s_condition(job, "Failed") is False
