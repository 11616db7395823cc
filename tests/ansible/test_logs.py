"""The lines a kubernetes.core module registers and the last of them that says something
(plugins/plugin_utils/logs.py), on every shape a result can have, and what each caller makes
of them: the backup outcome (strict: the log carries what the tool did) and k8s_last_log_line
(lenient: the line only explains a failure already found)."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.flask_k8s.stack.plugins.filter.kubernetes import k8s_last_log_line
from ansible_collections.flask_k8s.stack.plugins.plugin_utils.backup_job import job_outcome
from ansible_collections.flask_k8s.stack.plugins.plugin_utils.logs import last_line, result_lines

JOB = {"name": "mongodb-dump-1", "timeout": 600}
ENDED = {"resources": [{"metadata": {"name": "p"}, "status": {"phase": "Failed"}}]}

# (a registered result, its last line that says something; None: it has none)
READ = [
    ({"log_lines": ["connecting", "user flask created"]}, "user flask created"),
    ({"log_lines": ["a", "b", "", ""]}, "b"),
    ({"log_lines": ["a", "b  "]}, "b  "),
    ({"log_lines": ["a", "  "]}, "  "),
    ({"log_lines": ("a", "b")}, "b"),
    ({"log_lines": ["", ""]}, None),
    ({"log_lines": []}, None),
    ({"log_lines": None}, None),
    ({"failed": True, "msg": 'pods "x" not found'}, None),
    ({"skipped": True, "false_condition": "backup_pod != ''"}, None),
    ({}, None),
]
# Results of another shape: not a mapping, lines that are not a list, lines that are not text.
MISTYPED = [
    None,
    "a line",
    b"a line",
    ["a line"],
    {"log_lines": "a line"},
    {"log_lines": b"a line"},
    {"log_lines": 3},
    {"log_lines": {"line": "a"}},
]
NOT_TEXT = [
    ({"log_lines": ["a", 3]}, "3"),
    ({"log_lines": ["a", None]}, "a"),
    ({"log_lines": ["a", b"b"]}, "b'b'"),
]


@pytest.mark.parametrize(("result", "last"), READ)
def test_the_last_line_is_the_last_that_is_not_empty_as_it_is(result, last):
    assert last_line(result_lines(result, "log_lines"), "none") == (last or "none")
    assert last_line(result_lines(result, "log_lines", strict=False), "none") == (last or "none")


@pytest.mark.parametrize(("result", "last"), READ)
def test_the_backup_outcome_and_k8s_last_log_line_take_the_same_line(result, last):
    outcome = job_outcome(ENDED, result, JOB)["outcome"]
    assert outcome["message"] == f"The Job mongodb-dump-1 failed: {last or 'it left no log'}"
    assert k8s_last_log_line(result, "no log available") == (last or "no log available")


def test_the_lines_are_kept_whole_and_in_order():
    lines = ["a", "", "  b  ", "c"]
    assert result_lines({"stderr_lines": lines}, "stderr_lines") == lines
    assert result_lines({"stderr_lines": lines}, "stderr_lines", strict=False) == lines
    assert result_lines({"log_lines": lines}, "stderr_lines") == []


@pytest.mark.parametrize("result", MISTYPED + [result for result, _ in NOT_TEXT])
def test_a_result_of_another_shape_is_an_error_where_strict(result):
    with pytest.raises(AnsibleFilterError, match="must be a"):
        result_lines(result, "log_lines")
    with pytest.raises(AnsibleFilterError, match="must be a"):
        job_outcome(ENDED, result, JOB)


@pytest.mark.parametrize("result", MISTYPED)
def test_a_result_of_another_shape_is_no_log_where_lenient(result):
    assert result_lines(result, "log_lines", strict=False) == []
    assert k8s_last_log_line(result, "no log available") == "no log available"


@pytest.mark.parametrize(("result", "last"), NOT_TEXT)
def test_where_lenient_a_line_that_is_not_text_is_read_as_text_but_none_is_left_out(result, last):
    assert k8s_last_log_line(result, "no log available") == last


@pytest.mark.parametrize(
    ("result", "says"),
    [
        (None, "the registered result must be a mapping, got NoneType"),
        ({"log_lines": "a line"}, "log_lines must be a list of lines, got 'a line'"),
        ({"log_lines": b"a line"}, "log_lines must be a list of lines, got b'a line'"),
        ({"log_lines": ["a", 3]}, r"log_lines must be a list of lines, got \['a', 3\]"),
    ],
)
def test_the_strict_error_says_what_it_got(result, says):
    with pytest.raises(AnsibleFilterError, match=says):
        result_lines(result, "log_lines")
