"""Helpers of the Ansible checks that need no cluster.

The playbooks run for real (ansible-playbook from the virtual environment, the repository's
ansible.cfg and inventory), with a throwaway vault password and credentials created by
playbooks/setup.yml in a temporary directory; nothing in group_vars/ is touched.
"""

import itertools
import json
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The project's Ansible plugins: the collection flask_k8s.stack.
PLUGINS = REPO / "collections" / "ansible_collections" / "flask_k8s" / "stack" / "plugins"
# The project's roles, in the same collection (flask_k8s.stack.<role>).
ROLES_DIR = PLUGINS.parent / "roles"

# Arguments of every test run of playbooks/site.yml, which must stop in its pre-flight checks:
# should a check let the run through, it finds no cluster to change.
NO_CLUSTER = ("-e", "cluster_provider=existing", "-e", "existing_cluster_kubeconfig=/nonexistent")

# The plays of playbooks/site.yml after its pre-flight checks.
SITE_PLAYS = [
    play["name"]
    for play in yaml.safe_load((REPO / "playbooks" / "site.yml").read_text())
    if "ansible.builtin.import_playbook" not in play
]

ENGINES = ("mongodb", "ferretdb")
PROVIDERS = ("minikube", "local", "existing")
HPA = (True, False)
COMBINATIONS = [
    {
        "name": f"{engine}-{provider}-{'hpa' if hpa else 'nohpa'}",
        "engine": engine,
        "provider": provider,
        "hpa": hpa,
    }
    for engine, provider, hpa in itertools.product(ENGINES, PROVIDERS, HPA)
]


def jinja(expression: str, **variables: object) -> object:
    """The value of a template as Ansible renders it in a task, with its own filters and tests
    (not the collection's): for comparing a plugin with the expression it stands for."""
    templar = Templar(loader=DataLoader(), variables=variables)
    return templar.template(trust_as_template(expression))


def jinja_expression(expression: str, **variables: object) -> object:
    """The value of `{{ expression }}`, as jinja() renders it."""
    return jinja("{{ " + expression + " }}", **variables)


@dataclass
class Vault:
    password_file: Path
    secrets_file: Path
    values: dict
    setup_output: str = ""
    render_output: str = ""

    def env(self) -> dict:
        return ansible_env(self.password_file)


def ansible_env(password_file: Path) -> dict:
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        ANSIBLE_VAULT_PASSWORD_FILE=str(password_file),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_STDOUT_CALLBACK="default",
    )
    env.pop("ANSIBLE_CONFIG", None)
    return env


@dataclass
class Background:
    """A process started beside the tests; its output goes to files in `directory`."""

    args: list
    process: subprocess.Popen
    directory: Path
    completed: subprocess.CompletedProcess | None = None
    waited: bool = False

    def result(self) -> subprocess.CompletedProcess:
        """The finished run. A wait that a test's time limit cut short is not repeated by every
        later test that needs the run: they fail at once."""
        if self.completed is None:
            if self.waited:
                pytest.fail(f"{self.args[1]} did not finish within an earlier test's time limit")
            self.waited = True
            returncode = self.process.wait(timeout=600)
            self.completed = subprocess.CompletedProcess(
                self.args,
                returncode,
                (self.directory / "stdout").read_text(),
                (self.directory / "stderr").read_text(),
            )
        return self.completed

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def start(args: list, env: dict, directory: Path) -> Background:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "stdout").open("w") as out, (directory / "stderr").open("w") as err:
        process = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=err)
    return Background(args, process, directory)


def checked(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, result.args))} failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def run(args: list, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    return checked(result) if check else result


def make_password_file(directory: Path, name: str = "vault-pass") -> Path:
    path = directory / name
    path.write_text(secrets.token_urlsafe(32) + "\n")
    path.chmod(0o600)
    return path


def fresh_clone_env(home: Path) -> dict:
    """The environment of a user without a vault password yet: the password client that
    ansible.cfg names looks in home/.config/flask-k8s/vault-pass."""
    env = ansible_env(home / "unused")
    del env["ANSIBLE_VAULT_PASSWORD_FILE"]
    env.pop("FLASK_K8S_VAULT_PASSWORD_FILE", None)
    env["HOME"] = str(home)
    return env


def create_vault(directory: Path) -> Vault:
    """Runs playbooks/setup.yml as on a fresh clone: it creates the vault password (where
    FLASK_K8S_VAULT_PASSWORD_FILE says) and the credentials encrypted with it."""
    password_file = directory / "config" / "vault-pass"
    secrets_file = directory / "secrets.yml"
    env = fresh_clone_env(directory)
    env["FLASK_K8S_VAULT_PASSWORD_FILE"] = str(password_file)
    result = run(
        [
            BIN / "ansible-playbook",
            "playbooks/setup.yml",
            "-e",
            f"flask_k8s_secrets_file={secrets_file}",
        ],
        env,
    )
    view = run([BIN / "ansible-vault", "view", secrets_file], ansible_env(password_file))
    return Vault(
        password_file, secrets_file, yaml.safe_load(view.stdout), result.stdout + result.stderr
    )


def start_render(vault: Vault, root: Path, combinations: list) -> Background:
    return start(
        [
            BIN / "ansible-playbook",
            "tests/ansible/render.yml",
            "-e",
            f"flask_k8s_secrets_file={vault.secrets_file}",
            "-e",
            f"render_root={root}",
            "-e",
            json.dumps({"render_combinations": combinations}),
        ],
        vault.env(),
        root.with_name(root.name + "-run"),
    )


def render_twins(root: Path, combinations: list) -> None:
    """Gives each combination without the HPA the database's and the backups' manifests of its
    twin with the HPA (render-combination.yml renders them once for both)."""
    for combination in combinations:
        if not combination["hpa"]:
            twin = root / combination["name"].replace("-nohpa", "-hpa")
            shutil.copy(twin / "mongodb.yaml", root / combination["name"])
            shutil.copytree(twin / "backup", root / combination["name"] / "backup")


def render(vault: Vault, root: Path, combinations: list) -> subprocess.CompletedProcess:
    result = checked(start_render(vault, root, combinations).result())
    render_twins(root, combinations)
    return result


def validate_strictly(files: list) -> subprocess.CompletedProcess:
    """kubernetes-validate --strict against Kubernetes 1.34's schemas (unknown fields refused)."""
    return subprocess.run(
        [BIN / "kubernetes-validate", "-k", "1.34.0", "--strict", "--quiet", *files],
        capture_output=True,
        text=True,
        check=False,
    )


def load_documents(directory: Path) -> list:
    documents = []
    for path in sorted(directory.glob("*.yaml")):
        documents.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return documents


def find(documents: list, kind: str, name: str | None = None) -> list:
    return [
        doc
        for doc in documents
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)
    ]


def one(documents: list, kind: str, name: str | None = None) -> dict:
    found = find(documents, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_specs(documents: list) -> list:
    """(kind/name, pod spec) of every workload."""
    specs = []
    for doc in documents:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            specs.append(
                (f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"])
            )
    return specs


def selects(selector: dict, labels: dict) -> bool:
    """Whether a label selector (matchLabels only) selects a pod with these labels."""
    assert set(selector) <= {"matchLabels"}, f"selector beyond matchLabels: {selector}"
    return selector.get("matchLabels", {}).items() <= labels.items()


def admits(policies: list, target: dict, source: dict, port: int) -> bool:
    """Whether the NetworkPolicies of a namespace admit a connection from a pod of the same
    namespace with the labels `source` to a pod with the labels `target` on a TCP port."""
    selecting = [
        policy
        for policy in policies
        if "Ingress" in policy["spec"]["policyTypes"]
        and selects(policy["spec"]["podSelector"], target)
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("ingress") or []:
            ports = rule.get("ports")
            peers = rule.get("from")
            for peer in peers or []:
                assert set(peer) == {"podSelector"}, f"peer beyond podSelector: {peer}"
            port_ok = not ports or any(
                entry.get("protocol", "TCP") == "TCP" and entry["port"] == port for entry in ports
            )
            peer_ok = not peers or any(selects(peer["podSelector"], source) for peer in peers)
            if port_ok and peer_ok:
                return True
    return False


def load_documents_of(directory: Path, stem: str) -> list:
    """The documents of one role's rendered file, <directory>/<stem>.yaml."""
    text = (directory / f"{stem}.yaml").read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc]


def peer_selects(peer: dict, labels: dict, namespace: dict, own_namespace: dict) -> bool:
    """Whether a NetworkPolicy peer selects a pod with `labels` in a namespace with the labels
    `namespace` (a podSelector alone: the policy's own namespace, `own_namespace`)."""
    assert set(peer) <= {"podSelector", "namespaceSelector"}, f"peer beyond selectors: {peer}"
    if "namespaceSelector" in peer:
        namespace_ok = selects(peer["namespaceSelector"], namespace)
    else:
        namespace_ok = namespace == own_namespace
    return namespace_ok and selects(peer.get("podSelector", {}), labels)


def reaches(
    policies: list,
    source: dict,
    target: dict,
    port: int,
    protocol: str = "TCP",
    namespace: dict | None = None,
) -> bool:
    """Whether the NetworkPolicies of a namespace let a pod of it with the labels `source`
    open a connection to a pod with the labels `target` on a port, the target living in the
    namespace with the labels `namespace` (default: the same namespace)."""
    own = {"kubernetes.io/metadata.name": policies[0]["metadata"]["namespace"]}
    namespace = own if namespace is None else namespace
    selecting = [
        policy
        for policy in policies
        if "Egress" in policy["spec"]["policyTypes"]
        and selects(policy["spec"]["podSelector"], source)
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("egress") or []:
            ports = rule.get("ports")
            peers = rule.get("to")
            port_ok = not ports or any(
                entry.get("protocol", "TCP") == protocol and entry["port"] == port
                for entry in ports
            )
            peer_ok = not peers or any(peer_selects(peer, target, namespace, own) for peer in peers)
            if port_ok and peer_ok:
                return True
    return False
