"""The backup role's manifests, rendered for every engine x provider x HPA combination.

render-combination.yml writes them to <combination>/backup/, beside the other roles'
manifests of the same combination, which these tests read too (the Flask image, the
database's NetworkPolicy)."""

import base64
import json
import os

import pytest
import yaml
from ansible_support import BIN, COMBINATIONS, REPO, find, load_documents, one, run

NAMES = [combo["name"] for combo in COMBINATIONS]
BY_NAME = {combo["name"]: combo for combo in COMBINATIONS}
DATABASE_JOBS = ("backup", "scheduled-backup", "restore")


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


def test_the_role_renders_its_claim_cronjob_and_three_jobs(combo):
    _, documents, _ = combo
    assert sorted(doc["kind"] for doc in documents) == [
        "CronJob",
        "Job",
        "Job",
        "Job",
        "PersistentVolumeClaim",
    ]
    assert sorted(pods(documents)) == ["backup", "backup-copy", "restore", "scheduled-backup"]
    for doc in documents:
        assert doc["metadata"]["namespace"] == "flask-mongodb"
        assert len(doc["metadata"]["name"]) <= 52


def test_every_template_of_the_backup_role_is_rendered():
    variables = yaml.safe_load((REPO / "roles" / "backup" / "vars" / "main.yml").read_text())
    templates = {
        path.name.removesuffix(".yaml.j2")
        for path in (REPO / "roles" / "backup" / "templates").glob("*.j2")
    }
    assert templates == {manifest["template"] for manifest in variables["backup_manifests"]}


def test_backup_volume_is_2gi_of_the_providers_class(combo):
    settings, documents, _ = combo
    claim = one(documents, "PersistentVolumeClaim", "mongodb-backups")
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    if settings["provider"] == "local":
        assert claim["spec"]["storageClassName"] == "local-hostpath"
    else:
        assert "storageClassName" not in claim["spec"]
    for template in pods(documents).values():
        volumes = {volume["name"]: volume for volume in template["spec"]["volumes"]}
        assert volumes["backups"]["persistentVolumeClaim"] == {"claimName": "mongodb-backups"}


def test_schedule_dumps_daily_and_keeps_the_newest_seven(combo):
    _, documents, _ = combo
    cronjob = one(documents, "CronJob", "mongodb-backup")
    spec = cronjob["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"]) == (
        "0 3 * * *",
        "Etc/UTC",
        "Forbid",
    )
    container = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "flaskapp.backup", "dump", "--keep", "7"]


def test_jobs_run_the_backup_tool_from_the_flask_image(combo):
    settings, documents, others = combo
    flask = one(others, "Deployment", "flask-app")["spec"]["template"]["spec"]["containers"][0]
    templates = pods(documents)
    commands = {
        component: template["spec"]["containers"][0]["command"]
        for component, template in templates.items()
    }
    assert commands["backup"] == ["python", "-m", "flaskapp.backup", "dump"]
    assert commands["restore"] == ["python", "-m", "flaskapp.backup", "restore", "latest"]
    assert commands["backup-copy"][0] == "sleep"
    for template in templates.values():
        for container in template["spec"]["containers"] + template["spec"]["initContainers"]:
            assert container["image"] == flask["image"]
    if settings["provider"] == "existing":
        assert flask["image"].startswith("registry.example.com:5000/")
    names = [doc["metadata"]["name"] for doc in find(documents, "Job")]
    assert sorted(name.rsplit("-", 1)[0] for name in names) == [
        "mongodb-copy",
        "mongodb-dump",
        "mongodb-restore",
    ]
    assert all(len(name.rsplit("-", 1)[1]) == 14 for name in names), names


def test_every_backup_pod_is_hardened(combo):
    settings, documents, _ = combo
    for component, template in pods(documents).items():
        spec = template["spec"]
        assert spec["restartPolicy"] == "Never", component
        assert spec["automountServiceAccountToken"] is False, component
        assert spec["securityContext"]["runAsNonRoot"] is True, component
        assert spec["securityContext"]["runAsUser"] == 10001, component
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, component
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, component
            assert context["readOnlyRootFilesystem"] is True, component
            assert context["capabilities"] == {"drop": ["ALL"]}, component
            assert "runAsUser" not in context, component
            assert set(container["resources"]) == {"requests", "limits"}, component
            assert "/tmp" in [mount["mountPath"] for mount in container["volumeMounts"]]
        init = spec["initContainers"]
        if settings["provider"] != "local":
            assert init == [], component
            continue
        (container,) = init
        assert "chown -R 10001:10001 /backups" in container["command"][-1]
        context = container["securityContext"]
        assert context["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN"]}
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True


def test_jobs_are_bounded_in_time_and_cleaned_up(combo):
    _, documents, _ = combo
    for job in find(documents, "Job"):
        spec = job["spec"]
        assert spec["backoffLimit"] == 0
        assert spec["activeDeadlineSeconds"] in (600, 3600)
        assert spec["ttlSecondsAfterFinished"] == 86400
    grace = {
        component: template["spec"]["terminationGracePeriodSeconds"]
        for component, template in pods(documents).items()
    }
    assert grace == {"backup": 30, "scheduled-backup": 30, "restore": 30, "backup-copy": 1}


def test_credentials_reach_the_backup_pods_only_as_the_application_user(combo, vault):
    _, documents, _ = combo
    for component, template in pods(documents).items():
        env = {item["name"]: item for item in template["spec"]["containers"][0].get("env", [])}
        if component == "backup-copy":
            assert env == {}
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


def test_the_database_network_policy_admits_the_database_jobs_and_not_the_copy_pod(combo):
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
        "backup_schedule must be a cron schedule of five fields",
        "backup_storage_size must be a positive quantity such as 2Gi or 500Mi, got '0Gi'.",
        "backup_name must be latest or a file name on the backup volume",
    ):
        assert sentence in output
    assert not list(tmp_path.glob("*/backup/*.yaml"))
