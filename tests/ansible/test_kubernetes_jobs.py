"""The k8s_last_log_line and k8s_ready_pods filters and the k8s_condition test over Jobs, their
logs and pods, each compared with the Jinja expression the mongodb role and the verify plays
used before, as Ansible renders it."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.flask_k8s.stack.plugins.filter.kubernetes import (
    k8s_last_log_line,
    k8s_ready_pods,
)
from ansible_collections.flask_k8s.stack.plugins.plugin_utils.objects import field, has_condition
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


# verify_disruption.yml's choice of the pod to delete, and verify_persistence_round.yml's wait.
READY_EXPRESSION = """{% set ready = [] %}{% for pod in pods
   if pod.metadata.deletionTimestamp is not defined and pod.status.conditions | default([])
      | selectattr('type', 'equalto', 'Ready') | selectattr('status', 'equalto', 'True') | list %}{%
   set _ = ready.append(pod.metadata.name) %}{% endfor %}{{ ready }}"""
POD_READY_EXPRESSION = """{{ (pod.status.conditions | default([])
   | selectattr('type', 'equalto', 'Ready') | map(attribute='status') | first
   | default('False')) == 'True' }}"""


def pod(name: str, ready: str | None, deleting: bool = False) -> dict:
    metadata: dict = {"name": name, "uid": f"uid-{name}"}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    conditions = [{"type": "PodScheduled", "status": "True"}]
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready})
    return {"metadata": metadata, "status": {"phase": "Running", "conditions": conditions}}


PODS = [
    pod("flask-a", "True"),
    pod("flask-b", "False"),
    pod("flask-c", "True", deleting=True),
    pod("flask-d", None),
    {"metadata": {"name": "flask-e"}, "status": {"phase": "Pending"}},
    pod("flask-f", "True"),
]


@pytest.mark.parametrize("pods", [PODS, PODS[1:5], [], PODS[::-1]])
def test_ready_pods_are_the_ones_the_jinja_loop_chose(pods: list) -> None:
    assert k8s_ready_pods(pods) == jinja(READY_EXPRESSION, pods=pods)


def test_ready_pods_skip_odd_entries() -> None:
    assert k8s_ready_pods([None, "flask-a", {"status": {}}, pod("flask-a", "True")]) == ["flask-a"]


@pytest.mark.parametrize("pods", [None, {}, "flask-a"])
def test_ready_pods_refuse_what_is_not_a_list(pods: object) -> None:
    with pytest.raises(AnsibleFilterError, match="k8s_ready_pods takes a list"):
        k8s_ready_pods(pods)


@pytest.mark.parametrize("one", [*PODS, {"status": {"conditions": []}}])
def test_ready_condition_is_what_the_wait_read(one: dict) -> None:
    assert k8s_condition(one, "Ready") == jinja(POD_READY_EXPRESSION, pod=one)


@pytest.mark.parametrize(
    ("obj", "path", "value"),
    [
        ({"a": {"b": 1}}, ("a", "b"), 1),
        ({"a": {"b": 1}}, ("a",), {"b": 1}),
        ({"a": {"b": 1}}, (), {"a": {"b": 1}}),
        ({"a": None}, ("a", "b"), None),
        ({"a": [1]}, ("a", "b"), None),
        ("a", ("a",), None),
        (None, ("a",), None),
    ],
)
def test_field_reads_as_far_as_the_object_goes(obj: object, path: tuple, value: object) -> None:
    assert field(obj, *path) == value


def test_has_condition_needs_the_type_and_the_status_true() -> None:
    assert has_condition(PODS[0], "Ready")
    assert not has_condition(PODS[0], "Failed")
    assert not has_condition(PODS[1], "Ready")
    assert not has_condition({"status": {"conditions": {"type": "Ready"}}}, "Ready")
