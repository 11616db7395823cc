"""Runs the override cases of override_cases.py and the README's override examples.

The cases run in one ansible-playbook process (tests/ansible/overrides.yml), without a cluster,
on an inventory of cases: the valid values of a role share hosts as far as their variables
allow, and so do its invalid values that the role refuses at the same stage; the JSON callback
reports, per host, the task that stopped it and its message. The README's examples run as
`make deploy ANSIBLE_ARGS=...` passes them, through what site.yml runs up to the cluster
(tests/ansible/render-deploy.yml).
"""

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_support import (
    BIN,
    REPO,
    ROLES_DIR,
    Background,
    Vault,
    ansible_env,
    load_documents_of,
    make_password_file,
    start,
)
from override_cases import CASES, Case

# The component roles' specs (the internal role, roles/common, has no main entry point and no
# option a user sets).
SPECS = {
    path.parent.parent.name: specs
    for path in sorted(ROLES_DIR.glob("*/meta/argument_specs.yml"))
    if "main" in (specs := yaml.safe_load(path.read_text())["argument_specs"])
}
# Roles with a render entry point render their manifests; the others (their tasks need a host
# or a cluster) are checked by their argument spec and tasks/validate.yml.
ENTRY = {role: "render" if "render" in specs else "validate" for role, specs in SPECS.items()}
# Roles that refuse each setting on a line of its own (tasks/validate.yml calls
# flask_k8s.stack.check_settings, which writes a line per setting, as the argument spec's
# validation does): the invalid values they refuse in their range checks can share a host and
# still be told apart.
LINE_PER_SETTING = {
    role: "flask_k8s.stack.check_settings" in path.read_text()
    for role in SPECS
    if (path := ROLES_DIR / role / "tasks" / "validate.yml").exists()
}
# The tasks that check a role's input: nothing is applied or rendered before them.
VALIDATION_TASKS = (
    "Validating arguments against arg spec",
    "Check the case against the role's argument spec",
    "Ensure every setting is in range",
)


@dataclass
class Host:
    name: str
    role: str
    variables: dict = field(default_factory=dict)

    @property
    def render_dir(self) -> Path | None:
        value = self.variables.get(f"{self.role}_render_dir")
        return Path(value) if value and ENTRY[self.role] == "render" else None


@dataclass
class Outcome:
    failed_task: str = ""
    message: str = ""

    def lines(self) -> list:
        return [" ".join(line.split()) for line in self.message.splitlines()]


def fill(value: str, render_dir: Path) -> str:
    return value.replace("{repo}", str(REPO)).replace("{render_dir}", str(render_dir))


def compatible(variables: dict, wanted: dict) -> bool:
    return all(variables.get(name, value) == value for name, value in wanted.items())


def stage_of(role: str, option: str, value: str) -> str:
    """Where a value is refused: by the argument spec (type, choices) or by the range checks.
    Values refused at different stages cannot share a host: the first stage hides the second."""
    spec = {option: SPECS[role]["main"]["options"][option]}
    return (
        "spec" if ArgumentSpecValidator(spec).validate({option: value}).error_messages else "checks"
    )


def pack(hosts: dict, prefix: str, role: str, wanted: dict) -> str:
    """The first host of this prefix whose variables agree with `wanted`, or a new one: cases
    share a host to save the cost of a host each, one value per variable."""
    candidates = [h for name, h in hosts.items() if name.rstrip("0123456789") == prefix]
    host = next((h for h in candidates if compatible(h.variables, wanted)), None)
    if host is None:
        host = Host(f"{prefix}{len(candidates)}", role)
        hosts[host.name] = host
    host.variables.update(wanted)
    return host.name


def plan(root: Path) -> tuple[dict, dict, dict]:
    """The hosts of the run and the host of each valid and each invalid value. The valid values
    of a role share hosts as far as their variables allow; so do its invalid values refused at
    the same stage, since a refusal lists every value it refuses, one line each."""
    hosts: dict = {}
    valid_host: dict = {}
    invalid_host: dict = {}
    for role, cases in CASES.items():
        for option, case in cases.items():
            # A case the role fails today stays apart, so that it spoils no other case; the
            # invalid values a role does not refuse yet share a host of their own.
            prefix = f"{role}--valid-{option + '-' if case.valid_gap else ''}"
            valid_host[role, option] = pack(
                hosts, prefix, role, {option: case.valid, **case.context}
            )
        for option, case in cases.items():
            for index, (value, _) in enumerate(invalid_values(case)):
                stage = "gap" if case.gap else stage_of(role, option, value)
                if stage == "checks" and not LINE_PER_SETTING.get(role):
                    stage = f"{option}-{index}"
                prefix = f"{role}--invalid-{stage}-"
                wanted = {**case.context, option: value}
                invalid_host[role, option, index] = pack(hosts, prefix, role, wanted)
    for host in hosts.values():
        render_dir = root / host.name
        if ENTRY[host.role] == "render":
            host.variables.setdefault(f"{host.role}_render_dir", "{render_dir}")
        host.variables = {name: fill(value, render_dir) for name, value in host.variables.items()}
    return hosts, valid_host, invalid_host


def invalid_values(case: Case) -> list:
    return [(case.invalid, case.allowed), *case.more_invalid]


def outcomes_of(report: dict) -> dict:
    """Per host: the first task that failed, and its message."""
    found: dict = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            name = task["task"]["name"].split(" : ", 1)[-1]
            for host, result in task["hosts"].items():
                outcome = found.setdefault(host, Outcome())
                if result.get("failed") and not outcome.failed_task:
                    outcome.failed_task = name
                    outcome.message = str(result.get("msg", ""))
    return found


@dataclass(repr=False)
class Run:
    hosts: dict
    valid_host: dict
    invalid_host: dict
    outcomes: dict
    output: str


@dataclass(repr=False)
class Overrides:
    """The hosts of the run, the host of each valid and each invalid value, and the run."""

    hosts: dict
    valid_host: dict
    invalid_host: dict
    background: Background

    @cached_property
    def outcomes(self) -> dict:
        """Per host, the task that stopped it and its message (waits for the run)."""
        result = self.background.result()
        try:
            report = json.loads(result.stdout)
        except json.JSONDecodeError as error:
            raise AssertionError(
                f"no report from overrides.yml:\n{result.stdout[-3000:]}\n{result.stderr}"
            ) from error
        outcomes = outcomes_of(report)
        missing = set(self.hosts) - set(outcomes)
        assert not missing, f"hosts without a result: {sorted(missing)}\n{result.stderr[-3000:]}"
        return outcomes


def start_overrides(root: Path) -> Overrides:
    """Writes the inventory of the cases and starts overrides.yml on it."""
    hosts, valid_host, invalid_host = plan(root / "rendered")
    inventory = root / "cases.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                f"overrides_{entry}": {
                    "vars": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": str(BIN / "python"),
                    },
                    "hosts": {
                        host.name: {"override_role": host.role, **host.variables}
                        for host in hosts.values()
                        if ENTRY[host.role] == entry
                    },
                }
                for entry in ("render", "validate")
            }
        )
    )
    env = ansible_env(make_password_file(root))
    env.update(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_FORKS="8")
    args = [
        BIN / "ansible-playbook",
        "-i",
        "inventory/hosts.yml",
        "-i",
        inventory,
        "tests/ansible/overrides.yml",
    ]
    return Overrides(hosts, valid_host, invalid_host, start(args, env, root / "run"))


# The README's own override examples, run as `make deploy ANSIBLE_ARGS=...` passes them, through
# what site.yml runs up to the cluster (tests/ansible/render-deploy.yml).
README_EXAMPLES = {
    "max-replicas": ["-e", "flaskapp_hpa_max_replicas=6"],
    "min-replicas": ["-e", "flaskapp_hpa_min_replicas=0"],
    "local-ferretdb": ["-e", "cluster_provider=local", "-e", "mongodb_engine=ferretdb"],
    # Not in the README: overrides of two roles that only work together.
    "open-database": ["-e", "mongodb_network_policy_enabled=false"],
}


@dataclass
class Deploy:
    returncode: int
    output: str
    rendered: Path

    @classmethod
    def of(cls, background: Background) -> "Deploy":
        result = background.result()
        return cls(
            result.returncode, result.stdout + result.stderr, background.directory / "rendered"
        )

    def documents(self, role: str) -> list:
        return load_documents_of(self.rendered, role)


def start_readme_deploys(vault: Vault, root: Path) -> dict:
    """Starts render-deploy.yml with the overrides of each README example, side by side."""
    return {
        name: start(
            [
                BIN / "ansible-playbook",
                "tests/ansible/render-deploy.yml",
                "-e",
                f"flask_k8s_secrets_file={vault.secrets_file}",
                "-e",
                f"render_deploy_dir={root / name / 'rendered'}",
                *args,
            ],
            vault.env(),
            root / name,
        )
        for name, args in README_EXAMPLES.items()
    }
