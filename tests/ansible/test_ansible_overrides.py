"""Every option of every role takes `-e name=value`: a string, typed by the role's argument spec.

For the cases of override_cases.py (run by overrides_support.py, without a cluster), a valid
value renders through the role's render entry point (or passes its argument spec and range
checks, for the roles whose tasks need a host or a cluster) and shows in the manifests with its
type; an invalid value stops the role at its argument spec or range check, before anything is
rendered, with a line that names the variable and what it accepts. The README's own override
examples run as `make deploy ANSIBLE_ARGS=...` passes them.
"""

import pytest
from ansible_support import (
    BIN,
    NO_CLUSTER,
    SITE_PLAYS,
    find,
    load_documents,
    run,
    validate_strictly,
)
from override_cases import CASES
from overrides_support import ENTRY, SPECS, VALIDATION_TASKS, invalid_values


def valid_params() -> list:
    return [
        pytest.param(
            role,
            option,
            id=f"{role}.{option}",
            marks=[pytest.mark.xfail(reason=case.valid_gap, strict=True)] if case.valid_gap else [],
        )
        for role, cases in CASES.items()
        for option, case in cases.items()
    ]


def invalid_params() -> list:
    params = []
    for role, cases in CASES.items():
        for option, case in cases.items():
            for index, (value, _) in enumerate(invalid_values(case)):
                marks = [pytest.mark.xfail(reason=case.gap, strict=True)] if case.gap else []
                params.append(
                    pytest.param(role, option, index, id=f"{role}.{option}={value}", marks=marks)
                )
    return params


@pytest.mark.parametrize("role", sorted(SPECS))
def test_every_option_of_the_role_has_an_override_case(role):
    options = set(SPECS[role]["main"]["options"])
    cases = set(CASES.get(role, {}))
    assert options - cases == set(), "options without a case in override_cases.py"
    assert cases - options == set(), "cases of options the role no longer has"


@pytest.mark.parametrize(("role", "option"), valid_params())
def test_a_valid_string_value_is_accepted_and_typed(overrides, role, option):
    case = CASES[role][option]
    host = overrides.hosts[overrides.valid_host[role, option]]
    outcome = overrides.outcomes[host.name]
    assert not outcome.failed_task, (
        f"{option}={host.variables[option]!r} stopped {host.name} at '{outcome.failed_task}':\n"
        f"{outcome.message}"
    )
    if case.expect is not None:
        case.expect(load_documents(host.render_dir))


@pytest.mark.parametrize(("role", "option", "index"), invalid_params())
def test_an_invalid_string_value_stops_the_role_before_it_renders(overrides, role, option, index):
    value, allowed = invalid_values(CASES[role][option])[index]
    host = overrides.hosts[overrides.invalid_host[role, option, index]]
    outcome = overrides.outcomes[host.name]
    assert outcome.failed_task, f"{option}={value!r} was accepted"
    assert outcome.failed_task.startswith(VALIDATION_TASKS), (
        f"{option}={value!r} stopped at '{outcome.failed_task}': {outcome.message}"
    )
    said = [line for line in outcome.lines() if option in line and allowed in line]
    assert said, f"no line names {option} and says {allowed!r}:\n{outcome.message}"
    if host.render_dir is not None:
        assert not host.render_dir.exists()


def test_the_rendered_overrides_pass_strict_schema_validation(overrides):
    files = sorted(
        str(path)
        for host in overrides.hosts.values()
        if host.render_dir is not None and host.name.split("--")[1].startswith("valid")
        for path in host.render_dir.glob("*.yaml")
    )
    assert len(files) >= len([role for role in CASES if ENTRY[role] == "render"])
    result = validate_strictly(files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_max_replicas_6_gives_an_hpa_of_up_to_6(readme_deploys):
    deploy = readme_deploys["max-replicas"]
    assert deploy.returncode == 0, deploy.output
    (hpa,) = find(deploy.documents("flaskapp"), "HorizontalPodAutoscaler")
    assert hpa["spec"]["maxReplicas"] == 6
    assert isinstance(hpa["spec"]["maxReplicas"], int)


def test_readme_min_replicas_0_stops_before_the_service_with_the_allowed_range(readme_deploys):
    deploy = readme_deploys["min-replicas"]
    assert deploy.returncode != 0
    output = " ".join(deploy.output.split())
    assert "flaskapp_hpa_min_replicas must be an integer from 1 to 50, got '0'." in output
    assert "not supported between instances" not in output
    assert not (deploy.rendered / "flaskapp.yaml").exists()


def test_readme_local_provider_with_ferretdb_renders_ferretdb_on_a_volume_it_owns(readme_deploys):
    deploy = readme_deploys["local-ferretdb"]
    assert deploy.returncode == 0, deploy.output
    assert "Cluster provider: local (cluster_provider is set to local)." in deploy.output
    (statefulset,) = find(deploy.documents("mongodb"), "StatefulSet")
    pod = statefulset["spec"]["template"]["spec"]
    assert [container["name"] for container in pod["containers"]] == ["ferretdb"]
    assert pod["containers"][0]["image"] == "flask-k8s/ferretdb:1.24.2"
    # No chown: the volume is the database user's by the pod's fsGroup.
    assert "initContainers" not in pod
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"] == 10002
    claim = statefulset["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["storageClassName"] == "local-path"


def test_an_open_database_beside_the_default_deny_policy_stops_before_the_service(readme_deploys):
    deploy = readme_deploys["open-database"]
    assert deploy.returncode != 0
    output = " ".join(deploy.output.split())
    assert (
        "flaskapp_network_policy_enabled denies ingress to every pod of the namespace, the "
        "database's too, while no NetworkPolicy admits the database's clients "
        "(mongodb_network_policy_enabled is false)"
    ) in output
    assert not (deploy.rendered / "flaskapp.yaml").exists()


def test_a_value_of_a_wrong_type_stops_site_in_its_preflight_checks(vault):
    result = run(
        [
            BIN / "ansible-playbook",
            "playbooks/site.yml",
            *NO_CLUSTER,
            "-e",
            f"flask_k8s_secrets_file={vault.secrets_file}",
            "-e",
            "flaskapp_hpa_enabled=maybe",
            "-e",
            "mongodb_engine=postgres",
        ],
        vault.env(),
        check=False,
    )
    assert result.returncode != 0
    lines = (result.stdout + result.stderr).splitlines()
    assert any(
        "argument 'flaskapp_hpa_enabled' is of type str and we were unable to convert to bool"
        in line
        for line in lines
    )
    assert any(
        line.endswith("value of mongodb_engine must be one of: mongodb, ferretdb, got: postgres")
        for line in lines
    )
    for play in SITE_PLAYS:
        assert f"PLAY [{play}]" not in result.stdout
