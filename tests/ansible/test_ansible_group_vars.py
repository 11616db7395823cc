"""The top-level group_vars/ is what the plays see, wherever the playbook lives."""

import json

import yaml
from ansible_support import BIN, NO_CLUSTER, REPO, SITE_PLAYS, run

GROUP_VARS = REPO / "group_vars"


def test_inventory_group_vars_is_a_link_to_the_top_level_group_vars():
    link = REPO / "inventory" / "group_vars"
    assert link.is_symlink()
    assert link.resolve() == GROUP_VARS.resolve()


def test_ansible_cfg_selects_the_inventory_next_to_the_link(vault):
    result = run([BIN / "ansible-config", "dump", "--only-changed"], vault.env())
    assert f"{REPO}/inventory/hosts.yml" in result.stdout


def test_the_inventory_carries_every_top_level_setting(vault):
    result = run([BIN / "ansible-inventory", "--host", "localhost"], vault.env())
    seen = json.loads(result.stdout)
    settings = yaml.safe_load((GROUP_VARS / "all.yml").read_text())
    for key, value in settings.items():
        assert seen.get(key) == value, key


def test_a_playbook_outside_the_playbooks_directory_sees_the_settings(vault, tmp_path):
    playbook = tmp_path / "show.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Show settings",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "Show",
                            "ansible.builtin.debug": {
                                "msg": "project={{ flask_k8s_project_dir }} "
                                "secrets={{ flask_k8s_secrets_file }}"
                            },
                        }
                    ],
                }
            ]
        )
    )
    result = run([BIN / "ansible-playbook", playbook], vault.env())
    assert f"project={REPO} secrets={REPO}/group_vars/secrets.yml" in result.stdout


def test_preflight_stops_when_group_vars_is_not_loaded(vault):
    result = run(
        [
            BIN / "ansible-playbook",
            "-i",
            "localhost,",
            "-c",
            "local",
            "playbooks/site.yml",
            *NO_CLUSTER,
        ],
        vault.env(),
        check=False,
    )
    assert result.returncode != 0
    assert "The settings in group_vars/ were not loaded" in result.stdout + result.stderr
    assert SITE_PLAYS
    for play in SITE_PLAYS:
        assert f"PLAY [{play}]" not in result.stdout


def test_group_vars_hold_project_settings_and_the_vault_indirection_only():
    settings = yaml.safe_load((GROUP_VARS / "all.yml").read_text())
    credentials = {
        name: value for name, value in settings.items() if not name.startswith("flask_k8s_")
    }
    assert credentials == {
        name: f"{{{{ vault_{name} }}}}"
        for name in (
            "mongodb_root_username",
            "mongodb_root_password",
            "mongodb_app_username",
            "mongodb_app_password",
            "flaskapp_api_keys",
        )
    }
