"""The filters of plugins/filter/files.py that name the manifests a configuration applies, the
settings whose file is missing, a version pinned in an environment file and the digests of
values. Each is compared with the Jinja expression the roles used before, as Ansible renders
it."""

import json
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.flask_k8s.stack.plugins.filter.files import (
    env_value,
    json_digest,
    missing_files,
    switched_on,
)
from ansible_support import jinja

MANIFESTS = ["networkpolicy", "tls", "api-keys", "deployment", "service", "pdb", "hpa"]
SWITCHES_EXPRESSION = """{{ manifests
     | reject('equalto', 'networkpolicy' if not policy | bool else '')
     | reject('equalto', 'hpa' if not hpa | bool else '')
     | reject('equalto', 'tls' if not tls | bool else '') | list }}"""


@pytest.mark.parametrize("policy", [True, False, "true", "false", "yes", "no", "1", "0", 1, 0])
@pytest.mark.parametrize("hpa", [True, "False"])
@pytest.mark.parametrize("tls", [False, "on"])
def test_switched_on_is_what_the_jinja_expression_kept(
    policy: object, hpa: object, tls: object
) -> None:
    switches = {"networkpolicy": policy, "hpa": hpa, "tls": tls}
    assert switched_on(MANIFESTS, switches) == jinja(
        SWITCHES_EXPRESSION, manifests=MANIFESTS, policy=policy, hpa=hpa, tls=tls
    )


def test_switched_on_keeps_names_without_a_switch_and_the_order() -> None:
    assert switched_on(["b", "a", "c"], {"a": False, "z": False}) == ["b", "c"]
    assert switched_on([], {"a": True}) == []
    assert switched_on(["a"], {}) == ["a"]


@pytest.mark.parametrize(
    ("names", "switches"),
    [("a,b", {}), ({"a": 1}, {}), (None, {}), (["a"], ["a"]), (["a"], None), (["a"], "a")],
)
def test_switched_on_refuses_what_is_not_names_and_switches(
    names: object, switches: object
) -> None:
    with pytest.raises(AnsibleFilterError, match="switched_on takes"):
        switched_on(names, switches)  # type: ignore[arg-type]


MISSING_EXPRESSION = """{{ files.keys()
     | zip(files.values() | map('regex_replace', '^', root ~ '/'))
     | rejectattr(1, 'file') | map('join', '=') | list }}"""


def test_missing_files_are_the_ones_the_jinja_expression_found(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "build.sh").write_text("")
    settings = {
        "image_flaskapp_dockerfile": "Dockerfile",
        "image_base_build_script": "scripts/build.sh",
        "image_ferretdb_build_script": "scripts/absent.sh",
        # A directory is not a file.
        "image_ferretdb_dockerfile": "scripts",
        "image_other": "",
    }
    found = missing_files(settings, str(tmp_path))
    assert found == jinja(MISSING_EXPRESSION, files=settings, root=str(tmp_path))
    assert found == [
        f"image_ferretdb_build_script={tmp_path}/scripts/absent.sh",
        f"image_ferretdb_dockerfile={tmp_path}/scripts",
        f"image_other={tmp_path}/",
    ]
    assert missing_files({}, str(tmp_path)) == []


@pytest.mark.parametrize("settings", [["Dockerfile"], "Dockerfile", None, 3])
def test_missing_files_refuses_what_is_not_a_map(settings: object) -> None:
    with pytest.raises(AnsibleFilterError, match="missing_files takes a map"):
        missing_files(settings, "/src")


VERSION_EXPRESSION = """{{ text.splitlines() | select('match', 'KUBE_ROUTER_VERSION=')
     | first | regex_replace('^KUBE_ROUTER_VERSION=', '') }}"""
ENV_TEXT = """# Pinned versions
K3S_VERSION=v1.31.4+k3s1
 KUBE_ROUTER_VERSION=ignored-indented
KUBE_ROUTER_VERSION_OLD=ignored-longer-name
KUBE_ROUTER_VERSION=v2.4.1
KUBE_ROUTER_VERSION=v0.0.0-second
"""


@pytest.mark.parametrize(
    "text",
    [
        ENV_TEXT,
        "KUBE_ROUTER_VERSION=v2.4.1",
        "KUBE_ROUTER_VERSION=",
        'KUBE_ROUTER_VERSION="v2.4.1"\r\nX=1',
    ],
)
def test_env_value_is_the_one_the_jinja_expression_read(text: str) -> None:
    assert env_value(text, "KUBE_ROUTER_VERSION") == jinja(VERSION_EXPRESSION, text=text)


def test_env_value_reads_the_first_line_that_sets_the_name() -> None:
    assert env_value(ENV_TEXT, "KUBE_ROUTER_VERSION") == "v2.4.1"
    assert env_value(ENV_TEXT, "K3S_VERSION") == "v1.31.4+k3s1"


@pytest.mark.parametrize(
    "text", ["", "# nothing\n", "KUBE_ROUTER_VERSIONS=1\n", " KUBE_ROUTER_VERSION=1"]
)
def test_env_value_without_the_name_says_so(text: str) -> None:
    with pytest.raises(AnsibleFilterError, match="no line sets KUBE_ROUTER_VERSION"):
        env_value(text, "KUBE_ROUTER_VERSION")


@pytest.mark.parametrize("text", [None, ["KUBE_ROUTER_VERSION=1"], 3])
def test_env_value_refuses_what_is_not_text(text: object) -> None:
    with pytest.raises(AnsibleFilterError, match="env_value takes the text"):
        env_value(text, "KUBE_ROUTER_VERSION")


DIGEST_VALUES = [
    [
        "FROM python:3.11\n",
        '#!/bin/sh\nexec kube-router "$@"\n',
        "python:3.11-slim",
        ["iptables", "ipset"],
        "v2.4.1",
        "musl-static",
    ],
    ["c" * 64, "mongo:7.0", "ferretdb", "app"],
    [
        "0123456789ab",
        "python:3.11",
        "",
        True,
        "2.1.0",
        "ghcr.io/ferretdb/ferretdb",
        "flask-k8s/flaskapp",
        "load",
        "minikube",
        "",
    ],
    [False, None, 3, 2.5, {"b": 1, "a": [1, 2]}],
    ["naïve ünïcode ✓", "tab\there", 'quote " and \\ backslash'],
    [],
    "one string",
]


@pytest.mark.parametrize("value", DIGEST_VALUES)
@pytest.mark.parametrize("length", [0, 10, 12])
def test_json_digest_is_the_one_the_jinja_expression_made(value: object, length: int) -> None:
    if length:
        old = "{{ value | to_json | hash('sha256') | truncate(length, true, '') }}"
    else:
        old = "{{ value | to_json | hash('sha256') }}"
    assert json_digest(value, length) == jinja(old, value=value, length=length)


def test_json_digest_is_a_sha256_of_the_json() -> None:
    assert len(json_digest(["a"])) == 64
    assert json_digest(["a"], 12) == json_digest(["a"])[:12]
    assert json_digest(["a"]) != json_digest(["b"])
    assert json_digest({"a": 1}) == json_digest(json.loads('{"a": 1}'))


@pytest.mark.parametrize("value", [{1, 2}, [object()], {"x": b"bytes"}])
def test_json_digest_refuses_what_json_cannot_write(value: object) -> None:
    with pytest.raises(AnsibleFilterError, match="json_digest takes JSON values"):
        json_digest(value)
