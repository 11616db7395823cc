"""Credentials: created per clone, vaulted, decrypted by the plays, checked before any change."""

import base64
import re
import stat
import subprocess
from pathlib import Path

import yaml
from ansible_support import (
    BIN,
    COMBINATIONS,
    NO_CLUSTER,
    REPO,
    ROLES_DIR,
    SITE_PLAYS,
    ansible_env,
    create_vault,
    fresh_clone_env,
    load_documents,
    make_password_file,
    render,
    run,
)


def task_names_of(tasks: list) -> set:
    """The names of tasks, and of the tasks inside their blocks."""
    names = set()
    for task in tasks:
        names.add(task["name"])
        for part in ("block", "rescue", "always"):
            names |= task_names_of(task.get(part, []))
    return names


# The pre-flight play's tasks and the flaskapp role's check of the API keys it includes.
PREFLIGHT_TASKS = task_names_of(
    yaml.safe_load((REPO / "playbooks" / "preflight.yml").read_text())[0]["tasks"]
) | task_names_of(yaml.safe_load((ROLES_DIR / "flaskapp" / "tasks" / "api_keys.yml").read_text()))


def task_names(output: str) -> list:
    return re.findall(r"^TASK \[(?:[\w.-]+ : )?(.+?)\] \*", output, flags=re.MULTILINE)


def test_repository_ships_no_credentials():
    tracked = subprocess.run(
        ["git", "ls-files", "group_vars"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "group_vars/secrets.yml" not in tracked
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "group_vars/secrets.yml"], cwd=REPO, check=False
    )
    assert ignored.returncode == 0
    example = yaml.safe_load((REPO / "group_vars" / "secrets.example.yml").read_text())
    assert example["vault_mongodb_root_password"] == ""
    assert example["vault_mongodb_app_password"] == ""


def test_setup_creates_a_private_random_vault_password_on_a_fresh_clone(vault):
    assert stat.S_IMODE(vault.password_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(vault.password_file.parent.stat().st_mode) == 0o700
    assert re.fullmatch(r"[A-Za-z0-9]{64}\n", vault.password_file.read_text())
    assert f"Created the vault password file {vault.password_file}" in vault.setup_output


def test_setup_writes_strong_random_credentials_encrypted_and_private(vault):
    text = vault.secrets_file.read_text()
    assert text.startswith("$ANSIBLE_VAULT;1.1;AES256\n")
    assert stat.S_IMODE(vault.secrets_file.stat().st_mode) == 0o600
    values = vault.values
    assert set(values) == {
        "vault_mongodb_root_username",
        "vault_mongodb_root_password",
        "vault_mongodb_app_username",
        "vault_mongodb_app_password",
        "vault_flaskapp_api_keys",
    }
    for key in ("vault_mongodb_root_password", "vault_mongodb_app_password"):
        assert re.fullmatch(r"[A-Za-z0-9]{32}", values[key]), key
        assert values[key] not in text
    assert values["vault_mongodb_root_password"] != values["vault_mongodb_app_password"]
    assert values["vault_mongodb_root_username"] != values["vault_mongodb_app_username"]


def test_setup_makes_a_random_write_key_and_read_key_of_256_bits(vault):
    keys = vault.values["vault_flaskapp_api_keys"]
    assert [(entry["name"], entry["scope"]) for entry in keys] == [
        ("writer", "write"),
        ("reader", "read"),
    ]
    for entry in keys:
        assert set(entry) == {"name", "scope", "key"}
        # secrets.token_urlsafe(32)'s alphabet and length.
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", entry["key"]), entry["name"]
        assert entry["key"] not in vault.secrets_file.read_text()
        assert entry["key"] not in vault.setup_output
    assert keys[0]["key"] != keys[1]["key"]


def test_setup_keeps_the_existing_password_and_credentials(vault):
    before = (vault.password_file.read_bytes(), vault.secrets_file.read_bytes())
    run(
        [
            BIN / "ansible-playbook",
            "playbooks/setup.yml",
            "-e",
            f"flask_k8s_secrets_file={vault.secrets_file}",
        ],
        vault.env(),
    )
    assert (vault.password_file.read_bytes(), vault.secrets_file.read_bytes()) == before


def test_no_credential_appears_in_the_output_of_the_plays(vault, rendered_root):
    output = vault.setup_output + vault.render_output
    assert rendered_root.exists()
    for key, value in vault.values.items():
        if "password" in key:
            assert value not in output
    for entry in vault.values["vault_flaskapp_api_keys"]:
        assert entry["key"] not in output


def test_rendered_secret_carries_the_vault_values(vault, manifests):
    for name, documents in manifests.items():
        (secret,) = [
            doc
            for doc in documents
            if doc["kind"] == "Secret" and doc["metadata"]["name"] == "mongodb-credentials"
        ]
        decoded = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
        assert decoded == {
            "root-username": vault.values["vault_mongodb_root_username"],
            "root-password": vault.values["vault_mongodb_root_password"],
            "app-username": vault.values["vault_mongodb_app_username"],
            "app-password": vault.values["vault_mongodb_app_password"],
        }, name


def test_a_password_change_rolls_the_pods_and_reruns_the_provisioning(rendered_root, tmp_path):
    (combination,) = [combo for combo in COMBINATIONS if combo["name"] == "ferretdb-local-hpa"]
    other = create_vault(tmp_path)
    render(other, tmp_path / "rendered", [combination])
    first = load_documents(rendered_root / combination["name"])
    second = load_documents(tmp_path / "rendered" / combination["name"])

    def pick(documents, kind):
        return next(
            doc
            for doc in documents
            if doc["kind"] == kind and doc["metadata"]["name"] != "flask-api-keys"
        )

    def checksum(documents):
        deployment = pick(documents, "Deployment")
        return deployment["spec"]["template"]["metadata"]["annotations"]["checksum/credentials"]

    assert pick(first, "Secret")["data"] != pick(second, "Secret")["data"]
    assert checksum(first) != checksum(second)
    assert pick(first, "Job")["metadata"]["name"] != pick(second, "Job")["metadata"]["name"]


def test_a_wrong_vault_password_stops_site_before_any_cluster_task(vault, tmp_path):
    wrong = make_password_file(tmp_path, "wrong-pass")
    result = run(
        [
            BIN / "ansible-playbook",
            "playbooks/site.yml",
            *NO_CLUSTER,
            "-e",
            f"flask_k8s_secrets_file={vault.secrets_file}",
        ],
        ansible_env(wrong),
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"The vault password from {wrong} does not decrypt {vault.secrets_file}" in " ".join(
        output.split()
    )
    ran = task_names(result.stdout)
    assert ran, output
    assert set(ran) <= PREFLIGHT_TASKS, ran
    assert SITE_PLAYS
    for play in SITE_PLAYS:
        assert f"PLAY [{play}]" not in result.stdout


def test_a_missing_vault_password_file_stops_before_any_task(vault, tmp_path):
    result = run(
        [
            BIN / "ansible-playbook",
            "playbooks/site.yml",
            *NO_CLUSTER,
            "-e",
            f"flask_k8s_secrets_file={vault.secrets_file}",
        ],
        ansible_env(tmp_path / "absent"),
        check=False,
    )
    assert result.returncode != 0
    assert f"The vault password file {tmp_path / 'absent'} was not found" in result.stderr
    assert task_names(result.stdout) == []


def test_a_plaintext_credentials_file_is_refused(vault, tmp_path):
    plain = tmp_path / "secrets.yml"
    plain.write_text(yaml.safe_dump(vault.values))
    result = run(
        [
            BIN / "ansible-playbook",
            "playbooks/site.yml",
            *NO_CLUSTER,
            "-e",
            f"flask_k8s_secrets_file={plain}",
        ],
        vault.env(),
        check=False,
    )
    assert result.returncode != 0
    assert "is not encrypted with ansible-vault" in result.stdout
    assert set(task_names(result.stdout)) <= PREFLIGHT_TASKS


def test_incomplete_credentials_are_refused(vault, tmp_path):
    values = {
        key: value for key, value in vault.values.items() if key != "vault_mongodb_app_password"
    }
    plain = tmp_path / "plain.yml"
    plain.write_text(yaml.safe_dump(values))
    encrypted = tmp_path / "secrets.yml"
    run(
        [BIN / "ansible-vault", "encrypt", "--output", encrypted, plain],
        vault.env(),
    )
    result = run(
        [
            BIN / "ansible-playbook",
            "playbooks/site.yml",
            *NO_CLUSTER,
            "-e",
            f"flask_k8s_secrets_file={encrypted}",
        ],
        vault.env(),
        check=False,
    )
    assert result.returncode != 0
    assert "lacks a credential" in result.stdout


def test_the_vault_password_file_named_in_ansible_cfg_decrypts_the_credentials(vault, tmp_path):
    config_dir = tmp_path / ".config" / "flask-k8s"
    config_dir.mkdir(parents=True)
    (config_dir / "vault-pass").write_bytes(vault.password_file.read_bytes())
    env = vault.env()
    del env["ANSIBLE_VAULT_PASSWORD_FILE"]
    env["HOME"] = str(tmp_path)
    result = run(
        [
            BIN / "ansible-playbook",
            "playbooks/preflight.yml",
            "-e",
            f"flask_k8s_secrets_file={vault.secrets_file}",
        ],
        env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Load the vaulted credentials" in result.stdout


def setup(env: dict, secrets_file: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run(
        [
            BIN / "ansible-playbook",
            "playbooks/setup.yml",
            "-e",
            f"flask_k8s_secrets_file={secrets_file}",
        ],
        env,
        check=check,
    )


def test_setup_on_a_fresh_clone_puts_the_password_in_the_home_config(tmp_path):
    setup(fresh_clone_env(tmp_path), tmp_path / "secrets.yml")
    password_file = tmp_path / ".config" / "flask-k8s" / "vault-pass"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(password_file.parent.stat().st_mode) == 0o700
    view = run(
        [BIN / "ansible-vault", "view", tmp_path / "secrets.yml"], ansible_env(password_file)
    )
    assert yaml.safe_load(view.stdout)["vault_mongodb_app_username"] == "flaskapp"


def test_credentials_without_their_password_stop_setup_and_site_with_one_sentence(vault, tmp_path):
    env = fresh_clone_env(tmp_path)
    password_file = tmp_path / ".config" / "flask-k8s" / "vault-pass"
    result = setup(env, vault.secrets_file, check=False)
    assert result.returncode != 0
    assert (
        f"{vault.secrets_file} exists but {password_file} holds no vault password: put your "
        "team's vault password there (mode 0600)."
    ) in " ".join(result.stdout.split())
    assert not password_file.exists()
    result = run(
        [
            BIN / "ansible-playbook",
            "playbooks/site.yml",
            *NO_CLUSTER,
            "-e",
            f"flask_k8s_secrets_file={vault.secrets_file}",
        ],
        env,
        check=False,
    )
    assert result.returncode != 0
    assert (
        f"There is no vault password at {password_file}: put the password {vault.secrets_file} "
        "was encrypted with there (mode 0600), or set ANSIBLE_VAULT_PASSWORD_FILE to your "
        "team's vault password file."
    ) in " ".join((result.stdout + result.stderr).split())
    assert set(task_names(result.stdout)) <= PREFLIGHT_TASKS


def test_teardown_needs_no_credentials_and_says_when_nothing_is_deployed(tmp_path):
    env = fresh_clone_env(tmp_path)
    absent = tmp_path / "absent"
    result = run(
        [
            BIN / "ansible-playbook",
            "playbooks/teardown.yml",
            "-e",
            f"flask_k8s_secrets_file={absent / 'secrets.yml'}",
            "-e",
            "cluster_provider=local",
            "-e",
            f"local_cluster_kubeconfig={absent / 'admin.kubeconfig'}",
            "-e",
            "teardown_cluster=false",
        ],
        env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No local cluster answers: nothing deployed to remove." in result.stdout
    assert not absent.exists()
    assert not (tmp_path / ".config" / "flask-k8s").exists()


def encrypt(vault, directory: Path, text: str, name: str = "secrets.yml") -> Path:
    plain = directory / f"{name}.plain"
    plain.write_text(text)
    encrypted = directory / name
    run([BIN / "ansible-vault", "encrypt", "--output", encrypted, plain], vault.env())
    plain.unlink()
    return encrypted


def decrypt(vault, path: Path) -> str:
    return run([BIN / "ansible-vault", "decrypt", "--output=-", path], vault.env()).stdout


# The credentials of a vault made before the API keys: comments, odd spacing, a value of the
# team's own and no newline at the end, which the keys must not disturb.
OLD_VAULT = """# Our team's credentials.
vault_mongodb_root_username: admin    # the administrator
vault_mongodb_root_password: 'root-password-of-the-team'
vault_mongodb_app_username: app
vault_mongodb_app_password: app-password-of-the-team
team_note: {owner: ops, rotated: 2026-01-01}"""


def test_setup_adds_the_api_keys_to_a_vault_without_them_and_changes_nothing_else(vault, tmp_path):
    secrets_file = encrypt(vault, tmp_path, OLD_VAULT)
    secrets_file.chmod(0o640)
    header = secrets_file.read_text().splitlines()[0]
    result = setup(vault.env(), secrets_file)
    assert (
        f"Added the API keys writer (scope write) and reader (scope read) to {secrets_file}"
        in " ".join(result.stdout.split())
    )
    text = decrypt(vault, secrets_file)
    assert text.startswith(OLD_VAULT + "\n")
    values = yaml.safe_load(text)
    keys = values.pop("vault_flaskapp_api_keys")
    assert values == yaml.safe_load(OLD_VAULT)
    assert [(entry["name"], entry["scope"]) for entry in keys] == [
        ("writer", "write"),
        ("reader", "read"),
    ]
    for entry in keys:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", entry["key"])
        assert entry["key"] not in result.stdout + result.stderr
    assert secrets_file.read_text().splitlines()[0] == header
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o640
    assert sorted(path.name for path in tmp_path.iterdir()) == ["secrets.yml"]
    before = secrets_file.read_bytes()
    setup(vault.env(), secrets_file)
    assert secrets_file.read_bytes() == before


def test_setup_keeps_the_vault_id_label_of_the_credentials(vault, tmp_path):
    plain = tmp_path / "plain"
    plain.write_text(OLD_VAULT + "\n")
    secrets_file = tmp_path / "secrets.yml"
    env = vault.env()
    env["ANSIBLE_VAULT_PASSWORD_FILE"] = str(tmp_path / "unused")
    make_password_file(tmp_path, "unused")
    run(
        [
            BIN / "ansible-vault",
            "encrypt",
            f"--vault-id=team@{vault.password_file}",
            "--encrypt-vault-id=team",
            "--output",
            secrets_file,
            plain,
        ],
        env,
    )
    setup(vault.env(), secrets_file)
    assert secrets_file.read_text().startswith("$ANSIBLE_VAULT;1.2;AES256;team\n")
    assert decrypt(vault, secrets_file).startswith(OLD_VAULT + "\n\n# API keys")


def test_setup_leaves_api_keys_alone_once_the_vault_has_them(vault, tmp_path):
    """After a rotation the vault may hold neither writer nor reader: setup adds nothing back."""
    rotated = OLD_VAULT + "\nvault_flaskapp_api_keys:\n  - {name: ci-2027, scope: write, key: %s}\n"
    secrets_file = encrypt(vault, tmp_path, rotated % ("k" * 43))
    before = secrets_file.read_bytes()
    setup(vault.env(), secrets_file)
    assert secrets_file.read_bytes() == before


def test_setup_leaves_the_credentials_as_they_were_when_they_do_not_decrypt(vault, tmp_path):
    secrets_file = encrypt(vault, tmp_path, OLD_VAULT)
    before = secrets_file.read_bytes()
    env = ansible_env(make_password_file(tmp_path, "other-pass"))
    result = setup(env, secrets_file, check=False)
    assert result.returncode != 0
    assert f"does not decrypt {secrets_file}" in " ".join(result.stdout.split())
    assert secrets_file.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["other-pass", "secrets.yml"]


def preflight(vault, secrets_file: Path) -> subprocess.CompletedProcess:
    return run(
        [
            BIN / "ansible-playbook",
            "playbooks/site.yml",
            *NO_CLUSTER,
            "-e",
            f"flask_k8s_secrets_file={secrets_file}",
        ],
        vault.env(),
        check=False,
    )


def test_a_vault_without_api_keys_stops_site_with_the_way_to_add_them(vault, tmp_path):
    secrets_file = encrypt(vault, tmp_path, OLD_VAULT)
    result = preflight(vault, secrets_file)
    assert result.returncode != 0
    assert (
        f"{secrets_file} holds no vault_flaskapp_api_keys: run `make setup`, which adds the "
        "service's API keys (writer and reader) to it and changes nothing else."
    ) in " ".join(result.stdout.split())
    assert set(task_names(result.stdout)) <= PREFLIGHT_TASKS


BAD_KEYS = [
    {"name": "writer", "scope": "write", "key": "a" * 40},
    {"name": "writer", "scope": "admin", "key": "short-key"},
    {"name": "has space", "scope": "read", "key": "a" * 40},
    {"name": "x" * 65, "scope": "read", "key": "b" * 33 + " c"},
    {"name": "typo", "scope": "read", "key": "c" * 40, "scopes": "write"},
    {"name": "number", "scope": "read", "key": 12345678901234567890123456789012345},
    "just-a-string",
]


def test_preflight_says_each_problem_of_the_api_keys_in_one_sentence(vault, tmp_path):
    values = {key: value for key, value in vault.values.items() if key.startswith("vault_mongodb")}
    values["vault_flaskapp_api_keys"] = BAD_KEYS
    secrets_file = encrypt(vault, tmp_path, yaml.safe_dump(values))
    result = preflight(vault, secrets_file)
    assert result.returncode != 0
    output = " ".join(result.stdout.split())
    where = f"vault_flaskapp_api_keys in {secrets_file}"
    x65 = "x" * 65
    for sentence in (
        f"{where} entry 2 (writer) needs a scope of read or write, got 'admin'.",
        f"{where} entry 2 (writer) needs a key of at least 32 characters",
        f"{where} entry 3 (has space) needs a name of 1-64 letters, digits, '.', '_' or '-', "
        "got 'has space'.",
        f"{where} entry 4 ({x65}) needs a name of 1-64",
        f"{where} entry 4 ({x65}) has a key with characters a client cannot send in an "
        "Authorization header",
        f"{where} entry 5 (typo) has fields other than name, scope and key: scopes.",
        f"{where} entry 6 (number) needs a key of at least 32 characters",
        f"{where} entry 7 must be a mapping with name, scope and key.",
        f"{where} names writer more than once: names are unique.",
        f"{where} entry 1 (writer) and entry 3 (has space) have the same key: give each its own.",
    ):
        assert sentence in output, sentence
    for entry in BAD_KEYS:
        if isinstance(entry, dict) and isinstance(entry["key"], str):
            assert entry["key"] not in result.stdout + result.stderr
    assert set(task_names(result.stdout)) <= PREFLIGHT_TASKS
    for play in SITE_PLAYS:
        assert f"PLAY [{play}]" not in result.stdout


def test_preflight_accepts_the_keys_setup_makes(vault):
    result = run(
        [
            BIN / "ansible-playbook",
            "playbooks/preflight.yml",
            "-e",
            f"flask_k8s_secrets_file={vault.secrets_file}",
        ],
        vault.env(),
    )
    assert "Ensure the API keys are well-formed" in result.stdout
    # Every role's settings were checked, the internal role's (which has none) included, and
    # nothing failed on the way, not even an item the play let pass.
    assert "item=common" in result.stdout
    assert "failed:" not in result.stdout
    assert "[ERROR]" not in result.stdout + result.stderr


def test_ansible_vault_before_setup_stops_with_one_sentence_and_encrypts_nothing(vault, tmp_path):
    env = fresh_clone_env(tmp_path)
    sentence = (
        f"There is no vault password at {tmp_path}/.config/flask-k8s/vault-pass yet: run "
        "`make setup` first, which creates it and this clone's credentials."
    )
    notes = tmp_path / "notes.yml"
    notes.write_text("team_note: not yet a secret\n")
    result = run([BIN / "ansible-vault", "encrypt", notes], env, check=False)
    assert result.returncode != 0
    assert sentence in result.stderr
    assert notes.read_text() == "team_note: not yet a secret\n"
    for command in ("view", "edit", "decrypt", "rekey"):
        result = run([BIN / "ansible-vault", command, vault.secrets_file], env, check=False)
        assert result.returncode != 0, command
        assert sentence in result.stderr, command
    assert not (tmp_path / ".config").exists()


def test_other_tools_get_a_random_password_that_decrypts_nothing_before_setup(tmp_path):
    env = fresh_clone_env(tmp_path)
    client = REPO / "scripts" / "vault-password"
    first, second = (
        subprocess.run([client], env=env, capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    )
    assert first != second
    assert len(first.strip()) >= 43
    result = run([BIN / "ansible-inventory", "--list"], env)
    assert "localhost" in result.stdout
