"""The lookup flask_k8s.stack.kubeconfig: the kubeconfig file the minikube and existing_cluster
roles use by default, found as minikube finds the file it writes its context to."""

import json
from pathlib import Path

import pytest
from ansible_collections.flask_k8s.stack.plugins.lookup import kubeconfig as plugin
from ansible_support import REPO, ansible_env, make_password_file, run


@pytest.mark.parametrize(
    ("environ", "found"),
    [
        ({"KUBECONFIG": "/k/one", "HOME": "/h"}, "/k/one"),
        ({"KUBECONFIG": "/k/one:/k/two", "HOME": "/h"}, "/k/one"),
        ({"KUBECONFIG": ":/k/two", "HOME": "/h"}, "/k/two"),
        ({"KUBECONFIG": "::", "HOME": "/h"}, "/h/.kube/config"),
        ({"KUBECONFIG": "", "HOME": "/h"}, "/h/.kube/config"),
        ({"HOME": "/h"}, "/h/.kube/config"),
        ({"KUBECONFIG": "relative/config", "HOME": "/h"}, "relative/config"),
    ],
)
def test_the_kubeconfig_is_the_first_entry_of_kubeconfig_else_the_home_one(environ, found):
    assert plugin.kubeconfig(environ) == found


@pytest.mark.parametrize(
    ("environ", "found"),
    [({"KUBECONFIG": ":/k/two:/k/three"}, "/k/two"), ({"KUBECONFIG": ""}, "{home}/.kube/config")],
)
def test_both_roles_that_read_a_kubeconfig_default_to_the_lookup(tmp_path: Path, environ, found):
    """The defaults of the minikube and existing_cluster roles, as a play that uses each role
    sees them."""
    roles = REPO / "collections/ansible_collections/flask_k8s/stack/roles"
    tasks = [
        {"ansible.builtin.include_vars": {"file": str(roles / role / "defaults" / "main.yml")}}
        for role in ("minikube", "existing_cluster")
    ]
    show = {
        "ansible.builtin.debug": {"msg": "{{ [minikube_kubeconfig, existing_cluster_kubeconfig] }}"}
    }
    playbook = tmp_path / "kubeconfig.yml"
    play = {"hosts": "localhost", "gather_facts": False, "tasks": [*tasks, show]}
    playbook.write_text(json.dumps([play]))
    home = tmp_path / "home"
    env = ansible_env(make_password_file(tmp_path)) | environ | {"HOME": str(home)}
    env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.json"
    report = json.loads(run(["ansible-playbook", str(playbook)], env).stdout)
    shown = report["plays"][0]["tasks"][-1]["hosts"]["localhost"]["msg"]
    assert shown == [found.format(home=home)] * 2
