"""Each role documents and validates its whole interface, and every value is written once."""

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import ansiblelint
import jsonschema
import pytest
import yaml
from ansible_collections.flask_k8s.stack.plugins.plugin_utils.settings import (
    KEYS,
    bound_setting,
    errors,
)
from ansible_support import REPO, ROLES_DIR

# The component roles: each has a main entry point, run by the playbooks. The internal role
# (roles/common) has none: the component roles call its entry points with explicit inputs.
ROLES = sorted(
    path.parent.parent.name
    for path in ROLES_DIR.glob("*/meta/argument_specs.yml")
    if "main" in yaml.safe_load(path.read_text())["argument_specs"]
)
INTERNAL = sorted(
    path.name for path in ROLES_DIR.iterdir() if path.is_dir() and path.name not in ROLES
)
GROUP_VARS = yaml.safe_load((REPO / "group_vars" / "all.yml").read_text())
ROLE_DOCS = REPO / "scripts" / "role_docs.py"


def defaults_of(role: str) -> dict:
    path = ROLES_DIR / role / "defaults" / "main.yml"
    return yaml.safe_load(path.read_text()) or {}


def specs_of(role: str) -> dict:
    path = ROLES_DIR / role / "meta" / "argument_specs.yml"
    return yaml.safe_load(path.read_text())["argument_specs"]


def options_of(role: str) -> dict:
    return specs_of(role)["main"]["options"]


def readme_table(role: str) -> list:
    """The variable names of the generated table in the role's README, in order."""
    text = (ROLES_DIR / role / "README.md").read_text()
    (table,) = re.findall(r"<!-- variables: .*?-->\n(.*?)<!-- end of variables -->", text, re.S)
    return re.findall(r"^\| `(\w+)` \|", table, flags=re.M)


def keys_named(tree: object, key: str) -> list:
    """Every mapping key `key` anywhere in a parsed YAML tree."""
    found = []
    if isinstance(tree, dict):
        found += [key] * (key in tree)
        for value in tree.values():
            found += keys_named(value, key)
    elif isinstance(tree, list):
        for value in tree:
            found += keys_named(value, key)
    return found


@pytest.mark.parametrize("role", ROLES)
def test_role_has_defaults_meta_argument_specs_and_readme(role):
    base = ROLES_DIR / role
    for part in ("defaults/main.yml", "meta/main.yml", "meta/argument_specs.yml", "README.md"):
        assert (base / part).is_file(), part


def test_the_internal_role_is_only_machinery_with_explicit_inputs():
    assert INTERNAL == ["common"]
    base = ROLES_DIR / "common"
    # Nothing a user sets: no defaults, no main entry point; vars/ holds the role's constants
    # (the project's field manager), none of them an input.
    assert not (base / "defaults").exists()
    specs = specs_of("common")
    assert "main" not in specs
    constants = yaml.safe_load((base / "vars" / "main.yml").read_text())
    inputs = {name for spec in specs.values() for name in spec["options"]}
    assert all(name.startswith("common_") for name in constants)
    assert not set(constants) & inputs
    for entry, spec in specs.items():
        assert (base / "tasks" / f"{entry}.yml").is_file(), entry
        for name, option in spec["options"].items():
            assert name.startswith("common_"), name
            assert option.get("type"), name
            assert option.get("description"), name
    # Every call names an entry point (without .yml, so that Ansible checks the inputs against
    # its spec) and passes its required inputs by name.
    calls = 0
    for path in ROLES_DIR.glob("*/tasks/*.yml"):
        for task in yaml.safe_load(path.read_text()) or []:
            include = task.get("ansible.builtin.include_role", {})
            if include.get("name") != "flask_k8s.stack.common":
                continue
            calls += 1
            entry = include["tasks_from"]
            assert entry in specs, (path, entry)
            required = {n for n, o in specs[entry]["options"].items() if o.get("required")}
            assert required <= set(task.get("vars", {})), (path, required)
    assert calls >= 3


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_prefixed_with_the_role_name_and_specified(role):
    options = options_of(role)
    for name in defaults_of(role):
        assert name.startswith(f"{role}_"), name
        assert name in options, f"{name} missing from meta/argument_specs.yml"


@pytest.mark.parametrize("role", ROLES)
def test_every_option_is_prefixed_and_has_a_type_and_a_description(role):
    for name, spec in options_of(role).items():
        assert name.startswith(f"{role}_"), name
        assert spec.get("type"), f"{name} has no type"
        assert spec.get("description"), f"{name} has no description"


@pytest.mark.parametrize("role", ROLES)
def test_every_default_has_a_comment_above_it(role):
    lines = (ROLES_DIR / role / "defaults" / "main.yml").read_text().splitlines()
    for index, line in enumerate(lines):
        if line and not line.startswith((" ", "#", "-")) and line != "---":
            above = lines[index - 1]
            documented = above.startswith("#") or (
                above and not above.startswith(" ") and not above.startswith("#")
            )
            assert documented, line


@pytest.mark.parametrize("role", ROLES)
def test_the_readme_table_documents_every_option_in_order(role):
    assert readme_table(role) == list(options_of(role))


def argument_spec_schema() -> dict:
    """ansible-lint's schema of meta/argument_specs.yml, with the `checks` of an option (the
    project's ranges and formats, which the schema does not know) added."""
    path = Path(ansiblelint.__file__).parent / "schemas" / "role-arg-spec.json"
    schema = copy.deepcopy(json.loads(path.read_text()))
    schema["$defs"]["option"]["properties"]["checks"] = {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {key: {} for key in KEYS},
    }
    return schema


@pytest.mark.parametrize("role", ROLES + INTERNAL)
def test_argument_specs_follow_ansible_lints_schema_with_checks(role):
    document = yaml.safe_load((ROLES_DIR / role / "meta" / "argument_specs.yml").read_text())
    jsonschema.validate(document, argument_spec_schema())


def test_the_schema_refuses_what_ansible_lint_refuses_and_unknown_checks():
    schema = argument_spec_schema()
    option = {"type": "int", "description": "x", "checks": {"min": 1, "max": 2}}
    jsonschema.validate({"argument_specs": {"main": {"options": {"a_b": option}}}}, schema)
    for wrong in ({**option, "range": [1, 2]}, {**option, "checks": {"minimum": 1}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"argument_specs": {"main": {"options": {"a_b": wrong}}}}, schema)


@pytest.mark.parametrize("role", ROLES)
def test_every_options_checks_are_well_formed_and_bounds_name_its_options(role):
    options = options_of(role)
    for name, option in options.items():
        checks = option.get("checks")
        if checks is None:
            continue
        assert errors(name, option.get("type", "str"), checks) == []
        for bound in (checks.get("min"), checks.get("max")):
            if isinstance(bound, str):
                setting = bound_setting(bound)[0]
                assert setting in options, f"{name} is bounded by {bound}, not an option of {role}"


def test_malformed_checks_are_named():
    assert errors("a", "int", {"min": 1}) == ["a: a number's checks give its min and its max"]
    assert errors("a", "str", {"min": 1, "format": "dns"}) == [
        "a: min, max and off_value are for int and float options",
        "a: no format is called dns",
    ]
    assert errors("a", "str", {"pattern": "("}) == [
        "a: a pattern needs its means",
        "a: the pattern is not a regular expression",
    ]
    assert errors("a", "str", {"empty": True, "size": 3}) == [
        "a: unknown key size",
        "a: the checks check nothing",
    ]


@pytest.mark.parametrize("role", ROLES)
def test_each_role_checks_its_settings_with_the_one_action(role):
    """The roles' validate entry points call flask_k8s.stack.check_settings: one piece of code
    turns every range into a message; no role keeps a list of checks of its own."""
    path = ROLES_DIR / role / "tasks" / "validate.yml"
    if not path.exists():
        return
    (task,) = yaml.safe_load(path.read_text())
    assert "flask_k8s.stack.check_settings" in task
    role_vars = ROLES_DIR / role / "vars" / "main.yml"
    assert not role_vars.exists() or f"{role}_checks:" not in role_vars.read_text()


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_carry_no_default(role):
    assert keys_named(specs_of(role), "default") == []


@pytest.mark.parametrize("role", ROLES)
def test_entry_points_other_than_main_take_the_same_options(role):
    specs = specs_of(role)
    for entry, spec in specs.items():
        if "options" in spec:
            assert spec["options"] == specs["main"]["options"], entry


@pytest.mark.parametrize("role", ROLES)
def test_group_vars_repeat_no_role_default(role):
    defaults = defaults_of(role)
    assert set(defaults) & set(GROUP_VARS) == set()
    values = [
        value
        for value in defaults.values()
        if isinstance(value, str) and len(value) > 3 and "{{" not in value
    ]
    for name, setting in GROUP_VARS.items():
        for value in values:
            repeated = re.search(rf"(?<![\w.-]){re.escape(value)}(?![\w.-])", str(setting))
            assert not repeated, f"group_vars/all.yml {name} repeats {value!r}"


def test_the_generated_docs_are_current():
    result = subprocess.run(
        [sys.executable, ROLE_DOCS, "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_the_docs_check_names_a_readme_whose_option_changed(tmp_path):
    for part in ("docs", "group_vars", "playbooks", "scripts", "collections"):
        shutil.copytree(REPO / part, tmp_path / part, symlinks=True)
    specs = tmp_path / ROLES_DIR.relative_to(REPO) / "flaskapp" / "meta" / "argument_specs.yml"
    specs.write_text(specs.read_text().replace("Replicas while the HPA is off", "Replicas"))
    result = subprocess.run(
        [sys.executable, tmp_path / "scripts" / "role_docs.py", "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "roles/flaskapp/README.md is stale" in result.stderr
    assert "docs/configuration.md is stale" in result.stderr


def test_the_docs_show_each_options_checks(tmp_path):
    """A range changed in the argument spec changes the generated docs: the range is written
    once, and the tables follow it."""
    for part in ("docs", "group_vars", "playbooks", "scripts", "collections"):
        shutil.copytree(REPO / part, tmp_path / part, symlinks=True)
    specs = tmp_path / ROLES_DIR.relative_to(REPO) / "flaskapp" / "meta" / "argument_specs.yml"
    text = specs.read_text()
    assert "checks: {min: 1, max: 100, note: percent of the CPU request}" in text
    specs.write_text(text.replace("{min: 1, max: 100, note:", "{min: 5, max: 95, note:"))
    subprocess.run([sys.executable, tmp_path / "scripts" / "role_docs.py"], check=True)
    readme = (tmp_path / ROLES_DIR.relative_to(REPO) / "flaskapp" / "README.md").read_text()
    assert (
        "| `flaskapp_hpa_cpu_target` | an integer from 5 to 95 (percent of the CPU request) |"
        in readme
    )


def provider_contract() -> tuple[list, dict]:
    variables = yaml.safe_load((ROLES_DIR / "cluster" / "vars" / "main.yml").read_text())
    return variables["cluster_connection_keys"], variables["cluster_provider_roles"]


def published_by_connect(role: str) -> dict:
    """The fact <role>_connection that the provider's connection entry point sets."""
    tasks = yaml.safe_load((ROLES_DIR / role / "tasks" / "connection.yml").read_text())
    facts = [
        task["ansible.builtin.set_fact"][f"{role}_connection"]
        for task in tasks
        if f"{role}_connection" in task.get("ansible.builtin.set_fact", {})
    ]
    assert len(facts) == 1, (
        f"roles/{role}/tasks/connection.yml sets {role}_connection {len(facts)} times"
    )
    return facts[0]


def test_every_provider_publishes_exactly_the_contract_keys():
    keys, providers = provider_contract()
    assert len(keys) == len(set(keys))
    for role in providers.values():
        assert sorted(published_by_connect(role)) == sorted(keys), role


def test_every_provider_says_how_images_reach_its_cluster():
    _, providers = provider_contract()
    delivery = options_of("image")["image_delivery"]["choices"]
    for provider, role in providers.items():
        connection = published_by_connect(role)
        assert connection["provider"] == provider, role
        assert connection["image_delivery"] in delivery, role


def test_cluster_provider_choices_are_auto_and_the_provider_roles():
    _, providers = provider_contract()
    choices = options_of("cluster")["cluster_provider"]["choices"]
    assert sorted(choices) == sorted(["auto", *providers])
    for role in providers.values():
        assert (ROLES_DIR / role / "tasks" / "connection.yml").is_file(), role


def test_a_list_of_values_another_role_repeats_is_the_same_list():
    """An argument spec cannot refer to another role's: the roles that take the same idea as a
    setting (the provider, how images reach the cluster, who reaches the NodePorts) list the
    same values as the role that defines it."""
    _, providers = provider_contract()
    cluster = yaml.safe_load((ROLES_DIR / "cluster" / "vars" / "main.yml").read_text())
    assert sorted(options_of("backup")["backup_provider"]["choices"]) == sorted(providers)
    assert (
        options_of("network_policy")["network_policy_image_delivery"]["choices"]
        == options_of("image")["image_delivery"]["choices"]
    )
    assert (
        options_of("flaskapp")["flaskapp_api_exposure"]["choices"]
        == cluster["cluster_api_exposures"]
    )


def task_vars(role: str, tasks: str, name: str) -> list[str]:
    """The list `name` of the one task of roles/<role>/tasks/<tasks> that defines it."""
    found = [
        task["vars"][name]
        for task in yaml.safe_load((ROLES_DIR / role / "tasks" / tasks).read_text())
        if name in task.get("vars", {})
    ]
    assert len(found) == 1, f"roles/{role}/tasks/{tasks} defines {name} {len(found)} times"
    assert isinstance(found[0], list), found[0]
    return found[0]


def test_both_providers_that_run_a_kubelet_put_back_the_kernel_settings_it_changes():
    """The kubelet changes kernel settings that are not namespaced: the local cluster and the
    minikube profile each record and restore them, and name the same ones."""
    local = yaml.safe_load((ROLES_DIR / "local_cluster" / "vars" / "main.yml").read_text())
    components = task_vars("local_cluster", "host.yml", "local_cluster_component_sysctls")
    kubelet = task_vars("minikube", "start.yml", "minikube_host_sysctls")
    assert kubelet
    assert components[-len(kubelet) :] == kubelet
    assert not set(local["local_cluster_sysctls"]) & set(components)


@pytest.mark.parametrize("role", ["mongodb", "backup"])
def test_the_database_and_backup_roles_read_nothing_of_the_service_role(role):
    """render-combination.yml renders their manifests once for both HPA settings."""
    for path in (ROLES_DIR / role).rglob("*"):
        if path.is_file() and path.suffix in (".yml", ".j2"):
            assert "flaskapp_" not in path.read_text(), path


def test_requirements_yml_lists_every_collection_the_project_uses():
    """Each collection named by a fully qualified module, filter, test or callback, and no
    other."""
    requirements = yaml.safe_load((REPO / "requirements.yml").read_text())
    listed = {entry["name"] for entry in requirements["collections"]}
    patterns = [
        "collections/ansible_collections/flask_k8s/stack/roles/**/*.yml",
        "playbooks/**/*.yml",
        "cluster/*.yml",
        "molecule/**/*.yml",
    ]
    paths = [path for pattern in patterns for path in REPO.glob(pattern)]
    paths.append(REPO / "tests" / "cluster" / "run.sh")
    used = set()
    for path in paths:
        used.update(
            re.findall(
                r"\b((?:ansible|community)\.[a-z_]+|kubernetes\.core)\.[a-z_]+", path.read_text()
            )
        )
    collections = used - {"ansible.builtin", "ansible.legacy"}
    assert {"kubernetes.core", "community.docker"} <= collections
    assert collections <= listed, (
        f"used but not in requirements.yml: {sorted(collections - listed)}"
    )
    assert listed <= collections, f"listed but not used: {sorted(listed - collections)}"
