"""The backup role's Jobs, made from its table of them, and what the role reads from the Jobs it
runs (plugins/plugin_utils/backup_job.py): the
pods of a Job as kubernetes.core.k8s_info returns them, and the JSON lines of the backup tool's
log, on every shape a cluster can give: no pods, a pod without statuses, a container that
cannot start, log lines that are not JSON, no outcome line, no log at all."""

import json

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.flask_k8s.stack.plugins.filter.backup_job import FilterModule
from ansible_collections.flask_k8s.stack.plugins.plugin_utils.backup_job import (
    cronjob,
    job_outcome,
    jobs,
    json_lines,
    pod_name,
    said,
    settled,
    stuck,
    stuck_text,
    upload_failure,
)
from ansible_collections.flask_k8s.stack.plugins.test import backup_job as test_plugins

JOB = {"name": "mongodb-dump-20261205231500", "timeout": 600, "component": "backup"}
ENDED = ["Succeeded", "Failed"]
DONE = {"result": "done", "message": "Wrote mongodb-20261205.archive.gz (42 records)."}
PULL = {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "flask-app:1"'}
SECRET = {"reason": "CreateContainerConfigError", "message": 'secret "mongodb-app" not found'}


def pod(name: str = "dump-abcde", phase: str | None = "Pending", **statuses: list) -> dict:
    status: dict = {} if phase is None else {"phase": phase}
    status.update(statuses)
    return {"metadata": {"name": name}, "status": status}


def waiting(state: dict) -> dict:
    return {"name": "backup", "state": {"waiting": state}}


def found(*pods: dict) -> dict:
    """A k8s_info result."""
    return {"changed": False, "api_found": True, "resources": list(pods)}


def log(*lines: object) -> dict:
    """A k8s_log result."""
    return {"changed": False, "log": "\n".join(map(str, lines)), "log_lines": list(lines)}


def line(**fields: object) -> str:
    return json.dumps(fields)


# The pods


@pytest.mark.parametrize(
    "pods",
    [
        {},  # a k8s_info that failed before it had any
        {"resources": None},
        found(),
    ],
)
def test_no_pods_have_no_name_are_not_stuck_and_not_settled(pods):
    assert pod_name(pods) == ""
    assert pod_name(pods, ["Running"]) == ""
    assert stuck(pods) == []
    assert stuck_text(pods) == ""
    assert not settled(pods, ENDED)


def test_a_pod_without_statuses_is_waited_for():
    for shape in (
        {"metadata": {"name": "p"}},
        {"metadata": {"name": "p"}, "status": None},
        pod("p", phase=None),
        pod("p", containerStatuses=None, initContainerStatuses=None),
        pod("p", containerStatuses=[{"name": "backup"}]),
        pod("p", containerStatuses=[{"name": "backup", "state": None}]),
        pod("p", containerStatuses=[{"name": "backup", "state": {"running": {}}}]),
        pod("p", containerStatuses=[waiting({"reason": "ContainerCreating"})]),
        pod("p", containerStatuses=[waiting({"message": "no reason"})]),
    ):
        assert stuck(found(shape)) == []
        assert not settled(found(shape), ENDED)
        assert pod_name(found(shape)) == "p"


def test_the_first_pod_names_the_log_and_a_phase_picks_the_copy_pod():
    pods = found(pod("a", "Failed"), pod("b", "Running"), pod("c", "Running"))
    assert pod_name(pods) == "a"
    assert pod_name(pods, ["Running"]) == "b"
    assert pod_name(pods, ["Succeeded"]) == ""
    assert pod_name(found({"status": {"phase": "Running"}}), ["Running"]) == ""


@pytest.mark.parametrize("phase", ENDED)
def test_an_ended_pod_settles_the_wait(phase):
    assert settled(found(pod("a", "Pending"), pod("b", phase)), ENDED)
    assert not settled(found(pod("b", phase)), ["Running"])


def test_a_container_that_cannot_start_settles_the_wait_with_its_reason():
    pods = found(pod(containerStatuses=[waiting(PULL)]))
    assert stuck(pods) == [PULL]
    assert settled(pods, ENDED)
    assert settled(pods, ["Running"])
    assert stuck_text(pods) == 'ImagePullBackOff (Back-off pulling image "flask-app:1")'


def test_init_containers_come_first_across_pods_and_the_first_message_is_told():
    pods = found(
        pod("a", containerStatuses=[waiting(SECRET)]),
        pod("b", initContainerStatuses=[waiting(PULL)]),
    )
    assert stuck(pods) == [PULL, SECRET]
    assert stuck_text(pods) == (
        'ImagePullBackOff, CreateContainerConfigError (Back-off pulling image "flask-app:1")'
    )


def test_a_stuck_state_without_a_message_gives_empty_parentheses():
    pods = found(pod(initContainerStatuses=[waiting({"reason": "InvalidImageName"})]))
    assert stuck_text(pods) == "InvalidImageName ()"


@pytest.mark.parametrize(
    "reason",
    [
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    ],
)
def test_every_state_that_does_not_pass_by_itself_is_stuck(reason):
    assert stuck(found(pod(containerStatuses=[waiting({"reason": reason})])))


@pytest.mark.parametrize("reason", ["ContainerCreating", "PodInitializing", None, 7, ["x"], {}])
def test_states_that_pass_by_themselves_or_are_malformed_are_not_stuck(reason):
    assert stuck(found(pod(containerStatuses=[waiting({"reason": reason})]))) == []


@pytest.mark.parametrize(
    ("pods", "says"),
    [
        (None, "a kubernetes.core.k8s_info result must be a mapping, got NoneType"),
        ([], "must be a mapping, got list"),
        ("pods", "must be a mapping, got str"),
        ({"resources": "pod"}, "the resources found must be a list"),
        ({"resources": {"metadata": {}}}, "the resources found must be a list"),
    ],
)
def test_pods_that_are_not_a_k8s_info_result_are_refused(pods, says):
    with pytest.raises(AnsibleFilterError, match=says):
        settled(pods, ENDED)


# The tool's log


def test_json_lines_skip_every_line_that_is_not_a_json_object():
    lines = [
        "Traceback (most recent call last):",
        '{"level": "info", "message": "connected"}',
        "{not json",
        '{"cut": "off',
        "",
        '  {"indented": true}',
        "[1, 2]",
        '"text"',
        '{"records": 42}',
    ]
    assert json_lines(lines) == [{"level": "info", "message": "connected"}, {"records": 42}]


def test_the_outcome_is_the_last_line_with_a_result():
    lines = [line(result="refused", message="first"), line(records=1), line(**DONE), "bye"]
    assert said(lines) == DONE
    assert said([line(records=1), line(level="info", message="x")]) == {}
    assert said([]) == {}


def test_a_finished_job_gives_the_tools_outcome_and_what_it_printed():
    printed = {"backup": "mongodb-20261205.archive.gz", "records": 42}
    outcome = job_outcome(
        found(pod(phase="Succeeded")),
        log(line(level="info", message="dumping"), line(**printed), "not json", line(**DONE)),
        JOB,
    )
    assert outcome == {"outcome": DONE, "printed": [printed, DONE]}


def test_a_refusal_is_the_outcome_even_when_the_pod_failed():
    refused = {"result": "refused", "reason": "not_empty", "message": "m", "existing": 3}
    assert job_outcome(found(pod(phase="Failed")), log(line(**refused)), JOB)["outcome"] == refused


def test_an_outcome_in_a_log_record_counts_and_is_not_printed():
    record = {"level": "error", "result": "failed", "message": "The database did not answer."}
    assert job_outcome(found(pod(phase="Failed")), log(line(**record)), JOB) == {
        "outcome": record,
        "printed": [],
    }


def failure(message: str) -> dict:
    return {"result": "failed", "reason": "job", "message": message}


def test_a_pod_that_cannot_start_says_why():
    pods = found(pod(initContainerStatuses=[waiting(SECRET)], containerStatuses=[waiting(PULL)]))
    assert job_outcome(pods, {"skipped": True}, JOB) == {
        "outcome": failure(
            "The pod of the Job mongodb-dump-20261205231500 cannot start: "
            'CreateContainerConfigError, ImagePullBackOff (secret "mongodb-app" not found).'
        ),
        "printed": [],
    }


@pytest.mark.parametrize(
    "pods",
    [
        found(),
        {"failed": True, "msg": "Timed out", "attempts": 220},
        found(pod(phase="Pending")),
        found(pod(phase="Running")),
        found(pod(phase=None)),
        found(pod("a", "Running"), pod("b", "Failed")),
    ],
)
def test_a_job_whose_pod_did_not_end_ran_out_of_time(pods):
    outcome = job_outcome(pods, log(line(level="info", message="dumping")), JOB)["outcome"]
    assert outcome == failure("The Job mongodb-dump-20261205231500 did not finish within 600 s.")


def test_the_timeout_is_told_as_given():
    job = {"name": "mongodb-copy-1", "timeout": "1800"}
    outcome = job_outcome(found(), {"skipped": True}, job)["outcome"]
    assert outcome["message"] == "The Job mongodb-copy-1 did not finish within 1800 s."


@pytest.mark.parametrize(
    ("lines", "last"),
    [
        (
            ["Traceback (most recent call last):", "ImportError: no module", "", ""],
            "ImportError: no module",
        ),
        ([line(level="error", message="x"), '{"no": "result"}'], '{"no": "result"}'),
        ([], "it left no log"),
        (["", ""], "it left no log"),
    ],
)
@pytest.mark.parametrize("phase", ENDED)
def test_an_ended_job_without_an_outcome_says_its_last_log_line(lines, last, phase):
    outcome = job_outcome(found(pod(phase=phase)), log(*lines), JOB)["outcome"]
    assert outcome == failure(f"The Job mongodb-dump-20261205231500 failed: {last}")


@pytest.mark.parametrize(
    "unread",
    [
        {"skipped": True, "false_condition": "backup_pod != ''"},
        {"failed": True, "msg": 'pods "x" not found'},
        {"log_lines": None},
    ],
)
def test_a_log_that_could_not_be_read_is_no_log(unread):
    outcome = job_outcome(found(pod(phase="Failed")), unread, JOB)
    assert outcome == {
        "outcome": failure("The Job mongodb-dump-20261205231500 failed: it left no log"),
        "printed": [],
    }


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ((found(), log(), None), "the Job must be a mapping"),
        ((found(), None, JOB), "the registered result must be a mapping"),
        ((found(), {"log_lines": "one line"}, JOB), "log_lines must be a list"),
        ((None, log(), JOB), "a kubernetes.core.k8s_info result must be a mapping"),
    ],
)
def test_outcome_input_of_the_wrong_shape_is_refused(arguments, says):
    with pytest.raises(AnsibleFilterError, match=says):
        job_outcome(*arguments)


# A file copied from this host to the backup volume

FILE = "~/backups/mongodb-20261201.archive.gz"
PATH = "/backups/mongodb-20261201.archive.gz"


def verified(rc: int, *stderr: str) -> dict:
    """A k8s_exec result."""
    return {
        "rc": rc,
        "return_code": rc,
        "stdout": "",
        "stdout_lines": [],
        "stderr": "\n".join(stderr),
        "stderr_lines": list(stderr),
    }


def test_a_verified_and_named_copy_is_no_failure():
    assert upload_failure(verified(0, line(**DONE)), FILE, PATH, False) == ""


def test_a_refused_file_says_the_tools_sentence_as_nothing_restored():
    refusal = line(result="refused", message="Verification failed: the archive is truncated.")
    assert upload_failure(verified(1, refusal), FILE, PATH, False) == (
        "Nothing was restored: the archive is truncated."
    )
    other = line(result="refused", message="Another sentence.")
    assert upload_failure(verified(1, other), FILE, PATH, True) == "Another sentence."
    inner = line(result="refused", message="Note: Verification failed: x")
    assert upload_failure(verified(1, inner), FILE, PATH, False) == "Note: Verification failed: x"


@pytest.mark.parametrize(
    ("result", "why"),
    [
        (verified(1, line(result="failed", message="No such backup.")), "No such backup."),
        (verified(1, line(result="failed"), "sh: python: not found"), "sh: python: not found"),
        (verified(126, "sh: python: not found"), "sh: python: not found"),
        (verified(1, line(level="info", message="x"), "{broken"), "{broken"),
        (verified(1), "no output"),
        ({"failed": True, "msg": "pod not found"}, "no output"),
        ({"stderr_lines": None}, "no output"),
    ],
)
def test_a_file_the_tool_did_not_verify_says_why(result, why):
    assert upload_failure(result, FILE, PATH, False) == (
        f"Nothing was restored: {FILE} could not be verified on the backup volume ({why})."
    )


def test_a_different_file_of_that_name_is_told_before_the_failed_naming():
    assert upload_failure(verified(1, line(**DONE)), FILE, PATH, True) == (
        "Nothing was restored: the backup volume already holds a different"
        " mongodb-20261201.archive.gz; give the file on this host another name and run again."
    )


def test_a_verified_copy_that_could_not_take_its_name_says_the_last_line():
    said_done = line(**DONE)
    assert upload_failure(verified(1, said_done, "mv: cannot move"), FILE, PATH, False) == (
        f"Nothing was restored: {FILE} arrived whole and verified, but could not be named {PATH}"
        " on the backup volume (mv: cannot move)."
    )
    assert upload_failure(verified(1, said_done), FILE, PATH, False).endswith(f"({said_done}).")
    blank_last = verified(1, said_done, "mv: cannot move", "")
    assert upload_failure(blank_last, FILE, PATH, False).endswith("(mv: cannot move).")


@pytest.mark.parametrize(
    ("result", "says"),
    [
        (None, "the registered result must be a mapping"),
        ("rc=0", "the registered result must be a mapping"),
        ({"stderr_lines": "x"}, "stderr_lines must be a list"),
    ],
)
def test_upload_results_of_the_wrong_shape_are_refused(result, says):
    with pytest.raises(AnsibleFilterError, match=says):
        upload_failure(result, FILE, PATH, False)


# The backup CronJob


def test_a_cronjob_gives_its_schedule_and_fingerprint():
    applied = {
        "metadata": {"name": "mongodb-backup", "annotations": {"flask-k8s.io/fingerprint": "ab12"}},
        "spec": {"schedule": "0 3 * * *"},
    }
    assert cronjob(found(applied)) == {"schedule": "0 3 * * *", "fingerprint": "ab12"}


@pytest.mark.parametrize(
    "cronjobs",
    [
        {},
        found(),
        found({}),
        found({"metadata": {"name": "mongodb-backup"}}),
        found({"metadata": {"name": "mongodb-backup", "annotations": None}, "spec": None}),
        found({"metadata": {"annotations": {"other": "x"}}, "spec": {"suspend": True}}),
    ],
)
def test_no_cronjob_or_one_without_them_has_no_schedule_and_no_fingerprint(cronjobs):
    assert cronjob(cronjobs) == {"schedule": "", "fingerprint": ""}


def test_a_cronjob_result_of_the_wrong_shape_is_refused():
    with pytest.raises(AnsibleFilterError, match="must be a mapping"):
        cronjob([])


# The Jobs, from the table of what sets each apart

TABLE = {
    "scheduled": {
        "component": "scheduled-backup",
        "database": True,
        "name": "backup",
        "stamped": False,
    },
    "dump": {"component": "backup", "database": True},
    "verify": {"component": "backup-verify"},
    "transfer": {"component": "backup-copy", "name": "copy", "timeout": 600},
}


def test_each_job_is_made_whole_from_what_sets_it_apart():
    made = jobs(TABLE, "mongodb", "20261206000000", 3600)
    assert made == {
        "scheduled": {
            "mode": "scheduled",
            "name": "mongodb-backup",
            "component": "scheduled-backup",
            "database": True,
            "timeout": 3600,
        },
        "dump": {
            "mode": "dump",
            "name": "mongodb-dump-20261206000000",
            "component": "backup",
            "database": True,
            "timeout": 3600,
        },
        "verify": {
            "mode": "verify",
            "name": "mongodb-verify-20261206000000",
            "component": "backup-verify",
            "database": False,
            "timeout": 3600,
        },
        "transfer": {
            "mode": "transfer",
            "name": "mongodb-copy-20261206000000",
            "component": "backup-copy",
            "database": False,
            "timeout": 600,
        },
    }
    assert list(made) == list(TABLE)


def test_the_timeout_is_kept_as_given_and_the_table_is_not_changed():
    table = {"dump": {"component": "backup"}}
    assert jobs(table, "db", "1", "1800")["dump"]["timeout"] == "1800"
    assert table == {"dump": {"component": "backup"}}
    assert jobs({}, "db", "1", 3600) == {}


def test_before_the_time_of_the_run_is_fixed_the_names_carry_none():
    made = jobs(TABLE, "mongodb", "", 3600)
    assert made["scheduled"]["name"] == "mongodb-backup"
    assert made["dump"]["name"] == "mongodb-dump-"


@pytest.mark.parametrize(
    ("table", "says"),
    [
        (None, "the table of Jobs must be a mapping, got NoneType"),
        ([{"component": "backup"}], "the table of Jobs must be a mapping, got list"),
        ("dump", "the table of Jobs must be a mapping, got str"),
        ({"dump": None}, "the Job of the mode dump must be a mapping"),
        ({"dump": "backup"}, "the Job of the mode dump must be a mapping"),
        ({"dump": {}}, "the Job of the mode dump needs a component"),
        ({"dump": {"component": ""}}, "the Job of the mode dump needs a component"),
        ({"dump": {"component": 3}}, "the Job of the mode dump needs a component"),
        (
            {"dump": {"component": "backup", "databse": True}},
            r"the Job of the mode dump has unknown fields: \['databse'\]",
        ),
        (
            {"dump": {"component": "backup", "database": "true"}},
            "database of the Job of the mode dump must be true or false",
        ),
        (
            {"dump": {"component": "backup", "stamped": 0}},
            "stamped of the Job of the mode dump must be true or false",
        ),
    ],
)
def test_a_table_of_the_wrong_shape_is_refused(table, says):
    with pytest.raises(AnsibleFilterError, match=says):
        jobs(table, "mongodb", "20261206000000", 3600)


# The plugins


def test_the_plugins_are_these_functions():
    assert FilterModule().filters() == {
        "backup_jobs": jobs,
        "backup_pod_name": pod_name,
        "backup_pod_stuck": stuck_text,
        "backup_job_outcome": job_outcome,
        "backup_upload_failure": upload_failure,
        "backup_cronjob": cronjob,
    }
    assert test_plugins.TestModule().tests() == {"backup_pod_settled": settled}
