"""The service's API keys: the Secret the pods read (hashes only), the rollout a change causes,
the checks of the keys, and `make api-key`."""

import base64
import hashlib
import importlib.util
import json
import subprocess
import sys

import pytest
import yaml
from ansible_support import (
    BIN,
    COMBINATIONS,
    PLUGINS,
    REPO,
    Vault,
    load_documents,
    one,
    render,
    run,
)

spec = importlib.util.spec_from_file_location(
    "flaskapp_api_keys_filter", PLUGINS / "filter" / "api_keys.py"
)
assert spec is not None
assert spec.loader is not None
FILTER = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = FILTER
spec.loader.exec_module(FILTER)

KEYS = [
    {"name": "writer", "scope": "write", "key": "w" * 43},
    {"name": "ci.read-1", "scope": "read", "key": "Zm9v-bar_baz~+/" + "x" * 20 + "=="},
]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_app_api_keys_carries_each_name_scope_and_hash_and_no_key():
    encoded = FILTER.api_keys_json(KEYS)
    assert json.loads(encoded) == [
        {"name": entry["name"], "scope": entry["scope"], "sha256": sha256(entry["key"])}
        for entry in KEYS
    ]
    for entry in KEYS:
        assert entry["key"] not in encoded
    assert FILTER.api_keys_json([]) == "[]"


def test_well_formed_keys_raise_no_problem():
    assert FILTER.api_key_problems(KEYS, "flaskapp_api_keys", 32) == []
    assert FILTER.api_key_problems([], "flaskapp_api_keys", 32) == []


@pytest.mark.parametrize(
    ("keys", "sentence"),
    [
        ("writer", "flaskapp_api_keys must be a list of entries with name, scope and key."),
        ([{"name": "", "scope": "read", "key": "k" * 32}], "entry 1 needs a name of 1-64"),
        ([{"name": "a/b", "scope": "read", "key": "k" * 32}], "got 'a/b'"),
        ([{"name": "a", "scope": "Write", "key": "k" * 32}], "scope of read or write, got 'Write'"),
        ([{"name": "a", "scope": "read", "key": "k" * 31}], "at least 32 characters"),
        ([{"name": "a", "scope": "read"}], "at least 32 characters"),
        ([{"name": "a", "scope": "read", "key": "é" * 32}], "cannot send"),
        ([{"name": "a", "scope": "read", "key": "=" + "k" * 32}], "cannot send"),
        ([{"name": "a", "scope": "read", "key": "k" * 32, "note": 1}], "fields other than"),
        ([["a", "read", "k" * 32]], "entry 1 must be a mapping"),
    ],
)
def test_each_malformed_key_gets_its_sentence(keys, sentence):
    problems = FILTER.api_key_problems(keys, "flaskapp_api_keys", 32)
    assert len(problems) == 1, problems
    assert sentence in problems[0]
    assert problems[0].endswith(".")


def api_keys_of(documents: list) -> tuple[dict, list]:
    secret = one(documents, "Secret", "flask-api-keys")
    return secret, json.loads(base64.b64decode(secret["data"]["api-keys.json"]))


def test_the_pods_read_the_hashes_of_the_vault_keys_through_a_secret_key_ref(vault, manifests):
    keys = vault.values["vault_flaskapp_api_keys"]
    for name, documents in manifests.items():
        secret, entries = api_keys_of(documents)
        assert secret["type"] == "Opaque"
        assert set(secret["data"]) == {"api-keys.json"}
        assert entries == [
            {"name": entry["name"], "scope": entry["scope"], "sha256": sha256(entry["key"])}
            for entry in keys
        ], name
        container = one(documents, "Deployment")["spec"]["template"]["spec"]["containers"][0]
        env = {item["name"]: item for item in container["env"]}
        assert env["APP_API_KEYS"] == {
            "name": "APP_API_KEYS",
            "valueFrom": {"secretKeyRef": {"name": "flask-api-keys", "key": "api-keys.json"}},
        }, name
        text = json.dumps(documents)
        for entry in keys:
            assert entry["key"] not in text, name
            assert base64.b64encode(entry["key"].encode()).decode() not in text, name


def test_the_secret_is_applied_before_the_deployment(rendered_root):
    for combination in COMBINATIONS:
        documents = [
            doc
            for doc in yaml.safe_load_all(
                (rendered_root / combination["name"] / "flaskapp.yaml").read_text()
            )
            if doc
        ]
        kinds = [doc["kind"] for doc in documents]
        assert kinds.index("Secret") < kinds.index("Deployment"), combination["name"]


def test_a_change_of_the_keys_rolls_the_pods(vault, rendered_root, tmp_path):
    """Each pod reads the keys when it starts: a new set of keys must start new pods."""
    (combination,) = [combo for combo in COMBINATIONS if combo["name"] == "ferretdb-local-hpa"]
    changed = dict(vault.values)
    changed["vault_flaskapp_api_keys"] = [
        *vault.values["vault_flaskapp_api_keys"],
        {"name": "writer-2027", "scope": "write", "key": "n" * 43},
    ]
    plain = tmp_path / "plain.yml"
    plain.write_text(yaml.safe_dump(changed))
    other = Vault(vault.password_file, tmp_path / "secrets.yml", changed)
    run([BIN / "ansible-vault", "encrypt", "--output", other.secrets_file, plain], vault.env())
    render(other, tmp_path / "rendered", [combination])
    before = load_documents(rendered_root / combination["name"])
    after = load_documents(tmp_path / "rendered" / combination["name"])

    def annotations(documents):
        return one(documents, "Deployment")["spec"]["template"]["metadata"]["annotations"]

    assert annotations(before)["checksum/api-keys"] != annotations(after)["checksum/api-keys"]
    assert annotations(before)["checksum/credentials"] == annotations(after)["checksum/credentials"]
    assert [entry["name"] for entry in api_keys_of(after)[1]] == ["writer", "reader", "writer-2027"]
    assert (
        annotations(after)["checksum/api-keys"]
        == hashlib.sha256(
            FILTER.api_keys_json(changed["vault_flaskapp_api_keys"]).encode()
        ).hexdigest()
    )


def make_api_key(vault, *args: str, **environment: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "api-key",
            *args,
            f"ANSIBLE_ARGS=-e flask_k8s_secrets_file={vault.secrets_file}",
        ],
        cwd=REPO,
        env={**vault.env(), **environment},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_make_api_key_prints_one_key_and_nothing_else(vault):
    keys = {entry["name"]: entry["key"] for entry in vault.values["vault_flaskapp_api_keys"]}
    for args, name in (((), "writer"), (("SCOPE=read",), "reader"), (("NAME=reader",), "reader")):
        result = make_api_key(vault, *args)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout == keys[name] + "\n", args
        for key in keys.values():
            assert key not in result.stderr
    # Only the command line chooses: some shells export NAME.
    result = make_api_key(vault, NAME="a-host-name", SCOPE="read")
    assert (result.returncode, result.stdout) == (0, keys["writer"] + "\n"), result.stderr[-2000:]


def test_make_api_key_says_which_keys_there_are_when_none_fits(vault):
    result = make_api_key(vault, "NAME=nobody")
    assert result.returncode != 0
    assert result.stdout == ""
    assert (
        "The vault holds no API key named nobody (it holds writer, reader): add one with "
        f"`ansible-vault edit {vault.secrets_file}`"
    ) in " ".join(result.stderr.split())
    result = make_api_key(vault, "NAME=reader", "SCOPE=write")
    assert result.returncode != 0
    assert "no API key named reader that allows write" in " ".join(result.stderr.split())
