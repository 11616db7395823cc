"""Credentials: created per clone, vaulted, decrypted by the plays, checked before any change."""

import base64
import re
import stat
import subprocess

import yaml
from ansible_support import (
    BIN,
    REPO,
    ansible_env,
    create_vault,
    load_documents,
    make_password_file,
    render,
    run,
)

PREFLIGHT_TASKS = {
    task["name"]
    for task in yaml.safe_load((REPO / "playbooks" / "preflight.yml").read_text())[0]["tasks"]
}


def task_names(output: str) -> list:
    return re.findall(r"^TASK \[(?:[\w-]+ : )?(.+?)\] \*", output, flags=re.MULTILINE)


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
    }
    for key in ("vault_mongodb_root_password", "vault_mongodb_app_password"):
        assert re.fullmatch(r"[A-Za-z0-9]{32}", values[key]), key
        assert values[key] not in text
    assert values["vault_mongodb_root_password"] != values["vault_mongodb_app_password"]
    assert values["vault_mongodb_root_username"] != values["vault_mongodb_app_username"]


def test_setup_keeps_existing_credentials(vault):
    before = vault.secrets_file.read_bytes()
    run(
        [
            BIN / "ansible-playbook",
            "playbooks/setup.yml",
            "-e",
            f"flask_k8s_secrets_file={vault.secrets_file}",
        ],
        vault.env(),
    )
    assert vault.secrets_file.read_bytes() == before


def test_no_credential_appears_in_the_output_of_the_plays(vault, rendered_root):
    output = vault.setup_output + vault.render_output
    assert rendered_root.exists()
    for key, value in vault.values.items():
        if "password" in key:
            assert value not in output


def test_rendered_secret_carries_the_vault_values(vault, manifests):
    for name, documents in manifests.items():
        (secret,) = [doc for doc in documents if doc["kind"] == "Secret"]
        decoded = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
        assert decoded == {
            "root-username": vault.values["vault_mongodb_root_username"],
            "root-password": vault.values["vault_mongodb_root_password"],
            "app-username": vault.values["vault_mongodb_app_username"],
            "app-password": vault.values["vault_mongodb_app_password"],
        }, name


def test_a_password_change_rolls_the_pods_and_reruns_the_provisioning(vault, tmp_path):
    combination = [{"name": "rotation", "engine": "ferretdb", "provider": "local", "hpa": True}]
    (tmp_path / "other").mkdir()
    other = create_vault(tmp_path / "other")
    render(vault, tmp_path / "first", combination)
    render(other, tmp_path / "second", combination)
    first = load_documents(tmp_path / "first" / "rotation")
    second = load_documents(tmp_path / "second" / "rotation")

    def pick(documents, kind):
        return next(doc for doc in documents if doc["kind"] == kind)

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
    assert "PLAY [Provide the Kubernetes cluster]" not in result.stdout


def test_a_missing_vault_password_file_stops_before_any_task(vault, tmp_path):
    result = run(
        [
            BIN / "ansible-playbook",
            "playbooks/site.yml",
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
        [BIN / "ansible-playbook", "playbooks/site.yml", "-e", f"flask_k8s_secrets_file={plain}"],
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
