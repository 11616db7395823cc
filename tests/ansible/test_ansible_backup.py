"""The backup role's manifests, rendered for every engine x provider x HPA combination.

render-combination.yml writes them to <combination>/backup/, beside the other roles'
manifests of the same combination, which these tests read too (the Flask image, the
database's NetworkPolicy)."""

import base64
import json
import os
import re
import sys

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_support import (
    BIN,
    COMBINATIONS,
    PLUGINS,
    REPO,
    ROLES_DIR,
    find,
    load_documents,
    one,
    run,
)

sys.path.insert(0, str(PLUGINS / "filter"))
from backup_cron import backup_cron_interval

NAMES = [combo["name"] for combo in COMBINATIONS]
BY_NAME = {combo["name"]: combo for combo in COMBINATIONS}
TOOL = ["python", "-m", "flaskapp.backup"]
# The pods that reach the database, and what each runs.
DATABASE_JOBS = {
    "backup": [*TOOL, "dump"],
    "scheduled-backup": [*TOOL, "dump", "--keep", "7", "--min-ratio", "0.5", "--scheduled"],
    "restore": [*TOOL, "restore", "latest"],
    "recover": [*TOOL, "recover"],
    "drill": [*TOOL, "drill", "--name", "latest", "--match", "{}"],
}
# The pods that only mount the backup volume.
VOLUME_JOBS = {
    "backup-verify": [*TOOL, "verify", "--all"],
    "backup-status": [*TOOL, "status"],
    "backup-prune": [*TOOL, "prune", "--keep", "7", "--min-ratio", "0.5"],
    "backup-copy": ["sleep", "600"],
}


@pytest.fixture(params=NAMES)
def combo(request, rendered_root):
    """(settings, the backup role's documents, the other roles' documents)."""
    name = request.param
    return (
        BY_NAME[name],
        load_documents(rendered_root / name / "backup"),
        load_documents(rendered_root / name),
    )


def pods(documents: list) -> dict:
    """The pod template of every Job and of the CronJob, by the pod's component label."""
    found = {}
    for doc in documents:
        if doc["kind"] == "Job":
            template = doc["spec"]["template"]
        elif doc["kind"] == "CronJob":
            template = doc["spec"]["jobTemplate"]["spec"]["template"]
        else:
            continue
        found[template["metadata"]["labels"]["app.kubernetes.io/component"]] = template
    return found


def test_every_backup_manifest_passes_strict_schema_validation_for_kubernetes_1_34(
    rendered_root,
):
    files = sorted(rendered_root.glob("*/backup/*.yaml"))
    assert len(files) == len(COMBINATIONS)
    run(
        [BIN / "kubernetes-validate", "-k", "1.34.0", "--strict", "--quiet", *files],
        dict(os.environ),
    )


def test_the_role_renders_its_claim_cronjob_and_a_job_for_each_command(combo):
    _, documents, _ = combo
    kinds = sorted(doc["kind"] for doc in documents)
    assert kinds == ["CronJob", *["Job"] * 8, "PersistentVolumeClaim"]
    assert sorted(pods(documents)) == sorted([*DATABASE_JOBS, *VOLUME_JOBS])
    for doc in documents:
        assert doc["metadata"]["namespace"] == "flask-mongodb"
        assert len(doc["metadata"]["name"]) <= 52


def test_every_template_and_every_job_of_the_backup_role_is_rendered(combo):
    _, documents, _ = combo
    templates = (ROLES_DIR / "backup" / "templates").glob("*.j2")
    kinds = {re.search(r"^kind: (\w+)$", path.read_text(), re.M)[1] for path in templates}
    assert kinds == {doc["kind"] for doc in documents}
    variables = yaml.safe_load((ROLES_DIR / "backup" / "vars" / "main.yml").read_text())
    components = [job["component"] for job in variables["backup_job_modes"].values()]
    assert sorted(pods(documents)) == sorted(components)


def test_backup_volume_is_2gi_of_the_providers_class(combo):
    settings, documents, _ = combo
    claim = one(documents, "PersistentVolumeClaim", "mongodb-backups")
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    if settings["provider"] == "local":
        assert claim["spec"]["storageClassName"] == "local-path"
    else:
        assert "storageClassName" not in claim["spec"]
    for template in pods(documents).values():
        volumes = {volume["name"]: volume for volume in template["spec"]["volumes"]}
        assert volumes["backups"]["persistentVolumeClaim"] == {"claimName": "mongodb-backups"}


def test_schedule_dumps_daily_marked_scheduled_and_prunes_under_the_shrink_guard(combo):
    _, documents, _ = combo
    cronjob = one(documents, "CronJob", "mongodb-backup")
    spec = cronjob["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"]) == (
        "0 3 * * *",
        "Etc/UTC",
        "Forbid",
    )
    job = spec["jobTemplate"]["spec"]
    container = job["template"]["spec"]["containers"][0]
    assert container["command"] == DATABASE_JOBS["scheduled-backup"]
    # A transient failure is retried twice; a refusal by the retention rules (3) or bad usage
    # (2) fails the Job at once, so the CronJob shows it and no second backup is written.
    assert job["backoffLimit"] == 2
    assert job["podFailurePolicy"] == {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {
                    "containerName": "scheduled-backup",
                    "operator": "In",
                    "values": [2, 3],
                },
            }
        ]
    }


def test_jobs_run_the_backup_tool_from_the_flask_image(combo):
    settings, documents, others = combo
    flask = one(others, "Deployment", "flask-app")["spec"]["template"]["spec"]["containers"][0]
    templates = pods(documents)
    commands = {
        component: template["spec"]["containers"][0]["command"]
        for component, template in templates.items()
    }
    assert commands == {**DATABASE_JOBS, **VOLUME_JOBS}
    for template in templates.values():
        for container in template["spec"]["containers"]:
            assert container["image"] == flask["image"]
    if settings["provider"] == "existing":
        assert flask["image"].startswith("registry.example.com:5000/")
    names = [doc["metadata"]["name"] for doc in find(documents, "Job")]
    assert sorted(name.rsplit("-", 1)[0] for name in names) == [
        "mongodb-copy",
        "mongodb-drill",
        "mongodb-dump",
        "mongodb-prune",
        "mongodb-recover",
        "mongodb-restore",
        "mongodb-status",
        "mongodb-verify",
    ]
    assert all(len(name.rsplit("-", 1)[1]) == 14 for name in names), names


def test_every_backup_pod_meets_the_restricted_profile_without_a_chown(combo):
    _, documents, _ = combo
    for component, template in pods(documents).items():
        spec = template["spec"]
        assert spec["restartPolicy"] == "Never", component
        assert spec["automountServiceAccountToken"] is False, component
        assert "initContainers" not in spec, component
        pod = spec["securityContext"]
        assert (pod["runAsNonRoot"], pod["runAsUser"], pod["fsGroup"]) == (True, 10001, 10001)
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, component
        for volume in spec["volumes"]:
            assert set(volume) - {"name"} <= {"persistentVolumeClaim", "emptyDir"}, component
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context == {
                "runAsNonRoot": True,
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "privileged": False,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            }, component
            assert set(container["resources"]) == {"requests", "limits"}, component
            assert "/tmp" in [mount["mountPath"] for mount in container["volumeMounts"]]


def test_jobs_are_bounded_in_time_and_cleaned_up(combo):
    _, documents, _ = combo
    for job in find(documents, "Job"):
        spec = job["spec"]
        assert spec["backoffLimit"] == 0
        assert spec["activeDeadlineSeconds"] in (600, 3600)
        assert spec["ttlSecondsAfterFinished"] == 86400
        (rule,) = spec["podFailurePolicy"]["rules"]
        component = job["metadata"]["labels"]["app.kubernetes.io/component"]
        assert rule["onExitCodes"]["containerName"] == component
    grace = {
        component: template["spec"]["terminationGracePeriodSeconds"]
        for component, template in pods(documents).items()
    }
    expected = {component: 30 for component in [*DATABASE_JOBS, *VOLUME_JOBS]}
    assert grace == expected | {"backup-copy": 1}


def test_credentials_reach_the_backup_pods_only_as_the_application_user(combo, vault):
    _, documents, _ = combo
    for component, template in pods(documents).items():
        env = {item["name"]: item for item in template["spec"]["containers"][0].get("env", [])}
        if component in VOLUME_JOBS:
            assert env == {}, component
            continue
        refs = {
            name: item["valueFrom"]["secretKeyRef"]
            for name, item in env.items()
            if "valueFrom" in item
        }
        assert refs == {
            "MONGODB_USERNAME": {"name": "mongodb-credentials", "key": "app-username"},
            "MONGODB_PASSWORD": {"name": "mongodb-credentials", "key": "app-password"},
        }, component
        assert env["MONGODB_HOST"]["value"] == "mongodb-service"
        assert env["BACKUP_DIR"]["value"] == "/backups"
    values = [value for key, value in vault.values.items() if "password" in key]
    encoded = [base64.b64encode(value.encode()).decode() for value in values]
    text = json.dumps(documents)
    for value in values + encoded:
        assert value not in text


def test_the_database_network_policy_admits_the_database_jobs_and_no_other(combo):
    _, documents, others = combo
    (rule,) = one(others, "NetworkPolicy", "mongodb")["spec"]["ingress"]
    selectors = [peer["podSelector"]["matchLabels"] for peer in rule["from"]]
    for component, template in pods(documents).items():
        labels = template["metadata"]["labels"]
        admitted = any(selector.items() <= labels.items() for selector in selectors)
        assert admitted == (component in DATABASE_JOBS), component


def test_teardown_keeps_the_backup_volume_and_removes_the_backup_jobs(combo):
    _, documents, _ = combo
    (play,) = yaml.safe_load((REPO / "playbooks" / "teardown.yml").read_text())
    kinds = {entry["kind"] for entry in play["vars"]["teardown_kinds"]}
    label, value = play["vars"]["teardown_selector"].split("=")
    assert "PersistentVolumeClaim" not in kinds
    assert {"Job", "CronJob"} <= kinds
    for doc in documents:
        assert doc["metadata"]["labels"][label] == value


def test_invalid_backup_settings_stop_the_render_naming_each(vault, tmp_path):
    result = run(
        [
            BIN / "ansible-playbook",
            "tests/ansible/render.yml",
            "-e",
            f"flask_k8s_secrets_file={vault.secrets_file}",
            "-e",
            f"render_root={tmp_path}",
            "-e",
            json.dumps(
                {
                    "render_combinations": COMBINATIONS[:1],
                    "backup_keep": 0,
                    "backup_prune_min_ratio": 1.5,
                    "backup_schedule": "every night",
                    "backup_storage_size": "0Gi",
                    "backup_name": "../etc/passwd",
                }
            ),
        ],
        vault.env(),
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    for sentence in (
        "backup_keep must be an integer from 1 to 1000, got '0'.",
        "backup_prune_min_ratio must be a number from 0 to 1 (0 turns the shrink guard off), "
        "got '1.5'.",
        "backup_schedule must be a cron schedule of five fields",
        "backup_storage_size must be a positive quantity such as 2Gi or 500Mi, got '0Gi'.",
        "backup_name must be latest or a file name on the backup volume",
    ):
        assert sentence in output
    assert not list(tmp_path.glob("*/backup/*.yaml"))


@pytest.mark.parametrize(
    ("schedule", "seconds"),
    [
        ("0 3 * * *", 86400),
        ("30 */6 * * *", 6 * 3600),
        ("*/15 * * * *", 900),
        ("5/20 8-17 * * *", (24 - 17 + 8) * 3600 - 40 * 60),
        ("0 9 * * mon-fri", 3 * 86400),
        ("0 0 1,15 * 1", 7 * 86400),
        ("0 0 1 */3 *", 92 * 86400),
        ("0 0 29 2 *", (4 * 365 + 1) * 86400),
        ("0 0 * * 7", 7 * 86400),
        ("@hourly", 3600),
        ("@weekly", 7 * 86400),
        ("@yearly", 366 * 86400),
    ],
)
def test_the_status_judges_a_schedule_by_its_longest_gap(schedule, seconds):
    assert backup_cron_interval(schedule) == seconds


@pytest.mark.parametrize(
    ("schedule", "says"),
    [
        ("0 3 * *", "a schedule has five fields"),
        ("0 25 * * *", "'25' is outside the hour field's 0-23"),
        ("*/0 * * * *", "the step of the minute field must be at least 1"),
        ("0 0 L * *", "'L' is not a day of month"),
        ("0 0 31 2 *", "runs less than twice in eight years"),
    ],
)
def test_a_schedule_that_cannot_be_judged_says_why(schedule, says):
    with pytest.raises(AnsibleFilterError, match=says):
        backup_cron_interval(schedule)
