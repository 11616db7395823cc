"""flask_k8s.stack.as_type: a role reads a map or list option as its checks read it, whether it
comes from YAML (already typed) or from `-e name=value` (a string)."""

import json
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.flask_k8s.stack.plugins.filter.settings import setting_as_type
from ansible_support import BIN, ansible_env, make_password_file, run


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ({"cpu": "1"}, "dict", {"cpu": "1"}),
        ('{"cpu": "1", "memory": "1Gi"}', "dict", {"cpu": "1", "memory": "1Gi"}),
        ("cpu: '1'", "dict", {"cpu": "1"}),
        ("{}", "dict", {}),
        (["a", "b"], "list", ["a", "b"]),
        ('["a", "b"]', "list", ["a", "b"]),
        ("a,b", "list", ["a", "b"]),
        (" a , ,b ", "list", ["a", "b"]),
        ("a", "list", ["a"]),
        ("", "list", []),
        ("[]", "list", []),
        ([{"name": "k", "scope": "read"}], "list", [{"name": "k", "scope": "read"}]),
    ],
)
def test_reads_the_value_as_its_type(value: object, kind: str, expected: object) -> None:
    assert setting_as_type(value, kind) == expected


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("[a, b", "dict"),
        ("not a map", "dict"),
        ('["a"]', "dict"),
        (None, "dict"),
        (3, "dict"),
        ("[a, b", "list"),
        (None, "list"),
        ({"a": 1}, "list"),
        ('{"name": "ci"}', "list"),
    ],
)
def test_leaves_a_value_of_another_type_for_the_checks(value: object, kind: str) -> None:
    """Not a map (or a list) read the other way round: the checks name the option."""
    typed = setting_as_type(value, kind)
    assert not isinstance(typed, dict if kind == "dict" else list) or typed == value


@pytest.mark.parametrize("kind", ["str", "int", "", "map"])
def test_refuses_a_kind_it_does_not_read(kind: str) -> None:
    with pytest.raises(AnsibleFilterError, match="reads one of dict, list"):
        setting_as_type("a", kind)


def test_an_extra_var_string_is_read_in_a_play(tmp_path: Path) -> None:
    """The filter as plays call it, with the values as ansible-playbook passes `-e` strings
    (key=value splits at spaces: the JSON map has none)."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: localhost\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - ansible.builtin.debug:\n"
        "        msg: \"{{ {'map': probe_map | flask_k8s.stack.as_type('dict'),"
        " 'list': probe_list | flask_k8s.stack.as_type('list')} | to_json }}\"\n"
    )
    env = ansible_env(make_password_file(tmp_path))
    env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.json"
    result = run(
        [
            BIN / "ansible-playbook",
            str(playbook),
            "-e",
            'probe_map={"cpu":"500m"}',
            "-e",
            "probe_list=containerd,,runc",
        ],
        env,
    )
    message = json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"]
    assert json.loads(message) == {"map": {"cpu": "500m"}, "list": ["containerd", "runc"]}
