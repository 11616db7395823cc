"""The checks of a role's settings are data in its argument spec, turned into messages by one
piece of code: plugin_utils/settings.py, applied by the flask_k8s.stack.check_settings action.

The action runs here in real ansible-playbook runs of a small role, with values given as
`-e name=value` strings; the functions it is built on are tested directly.
"""

import json
from pathlib import Path

import pytest
import yaml
from ansible_collections.flask_k8s.stack.plugins.plugin_utils.settings import (
    accepts,
    as_type,
    bound_setting,
    bound_value,
    describe,
)
from ansible_support import ansible_env as base_env
from ansible_support import make_password_file, run

SPEC = {
    "probe_port": {"type": "int", "checks": {"min": 1024, "max": 65535}},
    "probe_metrics_port": {"type": "int", "checks": {"off_value": 0, "min": 1024, "max": 65535}},
    "probe_low": {"type": "int", "checks": {"min": 1, "max": 10}},
    "probe_high": {"type": "int", "checks": {"min": "probe_low", "max": 10, "note": "items"}},
    "probe_renew": {"type": "int", "checks": {"min": 1, "max": "probe_high - 1"}},
    "probe_ratio": {"type": "float", "checks": {"min": 0, "max": 1}},
    "probe_name": {"type": "str", "checks": {"format": "k8s_dns_label", "max_length": 10}},
    "probe_dir": {"type": "str", "checks": {"format": "absolute_path", "empty": True}},
    "probe_labels": {"type": "dict", "checks": {"format": "k8s_label_map"}},
    "probe_version": {
        "type": "str",
        "checks": {"pattern": "^v[0-9]+$", "means": "a version such as v1"},
    },
    # Computed by another role later: not checked until it is known.
    "probe_image": {"type": "str", "checks": {"format": "image_reference"}},
    "probe_plain": {"type": "str"},
    "probe_password": {
        "type": "str",
        "no_log": True,
        "checks": {"min_length": 12, "means": "12 characters or more"},
    },
}
DEFAULTS = {
    "probe_port": 8000,
    "probe_metrics_port": 9100,
    "probe_low": 2,
    "probe_high": 5,
    "probe_renew": 3,
    "probe_ratio": 0.5,
    "probe_name": "web",
    "probe_dir": "",
    "probe_labels": {"app": "web"},
    "probe_version": "v1",
    "probe_image": "{{ later_role_facts.image }}",
    "probe_plain": "anything at all",
    "probe_password": "long enough to pass",
}
TASKS = [
    {
        "name": "Check the settings",
        "flask_k8s.stack.check_settings": {
            "rules": [
                {
                    "ok": "{{ probe_port | int != probe_metrics_port | int }}",
                    "msg": "probe_metrics_port must differ from probe_port.",
                }
            ]
        },
    }
]


def write_role(root: Path, name: str, options: dict, defaults: dict, tasks: list) -> None:
    base = root / "roles" / name
    for part in ("meta", "defaults", "tasks"):
        (base / part).mkdir(parents=True)
    for option in options.values():
        option.setdefault("description", "A setting.")
    specs = {"argument_specs": {"main": {"short_description": "Probe.", "options": options}}}
    (base / "meta" / "argument_specs.yml").write_text(yaml.safe_dump(specs, sort_keys=False))
    (base / "defaults" / "main.yml").write_text(yaml.safe_dump(defaults))
    # An entry point without an argument spec of its own: Ansible's validation of the main
    # entry point would stop at the setting that is not defined yet.
    (base / "tasks" / "check.yml").write_text(yaml.safe_dump(tasks))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("check-settings")
    write_role(root, "probe", json.loads(json.dumps(SPEC)), DEFAULTS, TASKS)
    write_role(
        root,
        "malformed",
        {
            "malformed_count": {"type": "int", "checks": {"min": 1}},
            "malformed_name": {"type": "str", "checks": {"format": "dns", "size": 3}},
            "malformed_days": {"type": "int", "checks": {"min": 1, "max": "malformed_count + 1"}},
        },
        {"malformed_count": 1, "malformed_name": "x", "malformed_days": 1},
        [{"name": "Check the settings", "flask_k8s.stack.check_settings": {}}],
    )
    (root / "play.yml").write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Probe",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "Run the role",
                            "ansible.builtin.include_role": {
                                "name": "{{ probe_role }}",
                                "tasks_from": "check",
                            },
                        }
                    ],
                }
            ]
        )
    )
    (root / "outside.yml").write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Outside a role",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [{"name": "Check the settings", "flask_k8s.stack.check_settings": {}}],
                }
            ]
        )
    )
    return root


def play(project: Path, *overrides: str, role: str = "probe", playbook: str = "play.yml") -> dict:
    """The result of the check task: its `failed` and `msg`."""
    env = base_env(make_password_file(project, f"pass-{len(list(project.iterdir()))}"))
    env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.json"
    args = ["ansible-playbook", str(project / playbook)]
    args += ["-e", f"probe_role={project / 'roles' / role}"]
    for override in overrides:
        args += ["-e", override]
    report = json.loads(run(args, env, check=False).stdout)
    (result,) = [
        host
        for play in report["plays"]
        for task in play["tasks"]
        if task["task"]["name"].endswith("Check the settings")
        for host in task["hosts"].values()
    ]
    return result


def test_the_defaults_pass_and_the_summary_counts_what_was_checked(project):
    result = play(project)
    assert not result.get("failed"), result
    assert result["msg"] == "12 settings and 1 rules checked."


def test_every_setting_out_of_range_is_named_on_a_line_of_its_own(project):
    result = play(
        project,
        "probe_port=1023",
        "probe_metrics_port=65536",
        "probe_low=7",
        "probe_high=6",
        "probe_ratio=1.5",
        "probe_name=Web",
        "probe_dir=relative",
        'probe_labels={"bad-key!":"x"}',
        "probe_version=1.0",
    )
    assert result["failed"]
    assert result["msg"].splitlines() == [
        "probe_port must be an integer from 1024 to 65535, got '1023'.",
        "probe_metrics_port must be 0 (off) or an integer from 1024 to 65535, got '65536'.",
        "probe_high must be an integer from probe_low (7) to 10 (items), got '6'.",
        "probe_ratio must be a number from 0 to 1, got '1.5'.",
        "probe_name must be a DNS label of at most 10 characters, got 'Web'.",
        "probe_dir must be empty or an absolute path, got 'relative'.",
        'probe_labels must be a map of label names to label values, got \'{"bad-key!":"x"}\'.',
        "probe_version must be a version such as v1, got '1.0'.",
    ]


def test_values_given_as_strings_are_read_as_the_options_type(project):
    result = play(
        project,
        "probe_port=65535",
        "probe_metrics_port=0",
        "probe_low=10",
        "probe_high=10",
        "probe_ratio=1",
        "probe_dir=/srv/probe",
        'probe_labels={"app.kubernetes.io/name":"web"}',
        "probe_image=registry.example.com/web:1",
    )
    assert not result.get("failed"), result


def test_a_bound_below_another_setting_follows_that_setting(project):
    result = play(project, "probe_renew=5")
    assert result["msg"] == "probe_renew must be an integer from 1 to probe_high - 1 (4), got '5'."
    assert not play(project, "probe_renew=4").get("failed")
    # The setting it names, given as a string too, moves the bound.
    assert not play(project, "probe_high=9", "probe_renew=8").get("failed")
    result = play(project, "probe_high=9", "probe_renew=9")
    assert result["msg"] == "probe_renew must be an integer from 1 to probe_high - 1 (8), got '9'."
    # When the setting it names is not a number, no value passes and the message names it.
    result = play(project, "probe_high=many")
    assert result["msg"].splitlines() == [
        "probe_high must be an integer from probe_low (2) to 10 (items), got 'many'.",
        "probe_renew must be an integer from 1 to probe_high - 1, got '3'.",
    ]


def test_the_value_of_a_secret_setting_is_never_shown(project):
    result = play(project, "probe_password=hunter2")
    assert result["msg"] == (
        "probe_password must be 12 characters or more, got a value that is not shown."
    )
    assert "hunter2" not in json.dumps(result)


def test_a_value_that_is_not_a_number_is_refused_with_the_range(project):
    result = play(project, "probe_port=many", "probe_ratio=half")
    assert result["msg"].splitlines() == [
        "probe_port must be an integer from 1024 to 65535, got 'many'.",
        "probe_ratio must be a number from 0 to 1, got 'half'.",
    ]


def test_a_known_value_of_a_setting_computed_later_is_checked(project):
    result = play(project, json.dumps({"probe_image": "Not An Image"}))
    assert result["msg"] == "probe_image must be an image reference, got 'Not An Image'."


def test_a_failed_rule_is_reported_after_the_settings(project):
    result = play(project, "probe_port=9100", "probe_name=-x")
    assert result["msg"].splitlines() == [
        "probe_name must be a DNS label of at most 10 characters, got '-x'.",
        "probe_metrics_port must differ from probe_port.",
    ]


def test_malformed_checks_stop_the_role_naming_each_mistake(project):
    result = play(project, role="malformed")
    assert result["failed"]
    assert result["msg"] == (
        "Malformed checks: malformed_count: a number's checks give its min and its max; "
        "malformed_name: unknown key size; malformed_name: no format is called dns; "
        "malformed_days: max names no setting (a name, or 'name - 1')"
    )


def test_outside_a_role_the_action_needs_an_argument_spec(project):
    result = play(project, playbook="outside.yml")
    assert result["msg"] == "check_settings runs in a role, or names argument_spec."


@pytest.mark.parametrize(
    ("kind", "value", "read"),
    [
        ("int", "5", 5),
        ("int", 5, 5),
        ("int", "5.5", None),
        ("int", True, None),
        ("int", "many", None),
        ("float", "0.25", 0.25),
        ("dict", '{"a": 1}', {"a": 1}),
        ("dict", "a: 1", {"a": 1}),
        ("list", '["--a", "--b"]', ["--a", "--b"]),
        ("list", "--a, --b", ["--a", "--b"]),
        ("list", "", []),
        ("str", "5", "5"),
    ],
)
def test_a_string_is_read_as_the_type_of_its_option(kind, value, read):
    assert as_type(kind, value) == read


@pytest.mark.parametrize(
    ("checks", "value", "ok"),
    [
        ({"min": 1, "max": 3}, 1, True),
        ({"min": 1, "max": 3}, 3, True),
        ({"min": 1, "max": 3}, 0, False),
        ({"min": 1, "max": 3}, 4, False),
        ({"min": 1, "max": 3}, None, False),
        ({"off_value": 0, "min": 1, "max": 3}, 0, True),
        ({"min": "other", "max": 3}, 2, True),
        ({"min": "other", "max": 3}, 1, False),
    ],
)
def test_a_number_is_accepted_within_its_bounds_inclusive(checks, value, ok):
    assert accepts("int", checks, value, {"other": 2}) is ok


@pytest.mark.parametrize(
    ("checks", "value", "ok"),
    [
        ({"format": "k8s_dns_label"}, "web-1", True),
        ({"format": "k8s_dns_label"}, "", False),
        ({"format": "k8s_dns_label"}, "web-1\n", False),
        ({"format": "image_reference"}, "flask-k8s/flaskapp:1\n", False),
        ({"format": "host_address"}, "example.com\n", False),
        ({"format": "k8s_label_map"}, {"app\n": "web"}, False),
        ({"format": "k8s_label_map"}, {"app": "web\n"}, False),
        ({"format": "k8s_env_map"}, {"LOG_LEVEL\n": "INFO"}, False),
        ({"format": "minikube_profile"}, "flask-k8s\n", False),
        ({"pattern": "^v[0-9]+$", "means": "v and a number"}, "v12\n", False),
        ({"format": "k8s_dns_label", "empty": True}, "", True),
        ({"format": "k8s_dns_label", "max_length": 3}, "webs", False),
        ({"min_length": 12, "means": "12 characters or more"}, "x" * 11, False),
        ({"min_length": 12, "means": "12 characters or more"}, "x" * 12, True),
        ({"pattern": "^v[0-9]+$", "means": "v and a number"}, "v12", True),
        ({"pattern": "^v[0-9]+$", "means": "v and a number"}, 12, False),
        ({"format": "absolute_path"}, "~/x", False),
        ({"format": "home_path"}, "~/x", True),
        ({"format": "file"}, __file__, True),
        ({"format": "directory"}, __file__, False),
        ({"format": "port_range"}, "30000-32767", True),
        ({"format": "port_range"}, "1-65535", True),
        ({"format": "port_range"}, "0-100", False),
        ({"format": "port_range"}, "100-100", False),
        ({"format": "port_range"}, "32767-30000", False),
        ({"format": "port_range"}, "30000-65536", False),
        ({"format": "port_range"}, "30000:32767", False),
        ({"format": "port_range"}, "30000", False),
        ({"format": "port_range"}, " 1-2", False),
        ({"format": "port_range"}, "1-2\n", False),
        ({"format": "port_range"}, 30000, False),
    ],
)
def test_text_is_accepted_by_format_pattern_and_length(checks, value, ok):
    assert accepts("str", checks, value) is ok


@pytest.mark.parametrize(
    ("bound", "setting", "offset"),
    [("days", "days", 0), ("cert_days - 1", "cert_days", 1), ("x2 - 10", "x2", 10)],
)
def test_a_bound_names_a_setting_and_how_much_below_it_is(bound, setting, offset):
    assert bound_setting(bound) == (setting, offset)


@pytest.mark.parametrize("bound", ["days + 1", "days-1", "days - x", "Days", "- 1", "", "a b"])
def test_a_bound_that_names_no_setting_is_refused(bound):
    with pytest.raises(ValueError, match="not a setting's name"):
        bound_setting(bound)


@pytest.mark.parametrize(
    ("value", "number"), [(365, 364), (2.5, 1.5), (None, None), ("365", None), (True, None)]
)
def test_the_number_of_a_bound_comes_from_the_setting_read_as_a_number(value, number):
    assert bound_value("days - 1", value) == number


def test_the_words_of_what_is_accepted():
    assert describe("int", {"min": 1, "max": 50}) == "an integer from 1 to 50"
    assert describe("float", {"min": 0, "max": 1, "note": "a ratio"}) == (
        "a number from 0 to 1 (a ratio)"
    )
    assert describe("int", {"min": "low", "max": 9}, {"low": 3}) == "an integer from low (3) to 9"
    assert describe("int", {"min": "low", "max": 9}) == "an integer from low to 9"
    assert describe("int", {"min": 1, "max": "days - 1"}, {"days - 1": 29}) == (
        "an integer from 1 to days - 1 (29)"
    )
    assert describe("int", {"min": 1, "max": "days - 1"}, {"days - 1": None}) == (
        "an integer from 1 to days - 1"
    )
    assert describe("str", {"format": "k8s_cpu", "empty": True}) == (
        "empty or a CPU quantity such as 200m or 1"
    )
    assert describe("str", {"format": "file", "means": "your own file"}) == "your own file"
