"""Benchmark: playbooks/site.yml against `kubectl apply --server-side` of the same manifests.

    python bench/bench_deploy.py [--rounds 3] [--namespace flask-bench] [--node-port 30181]

Needs a running cluster with the images delivered (`make deploy` first); the deployment under
test goes to a namespace of its own (--namespace, with its own NodePort), so the user's is left
alone. Both reach the same end state: the database ready, the provisioning Job complete, and
the service's rollout done with the autoscaler's minimum of replicas ready (site.yml's own
wait). Each round (at least 3) times, in an order that alternates from round to round:
  - kubectl: the manifests bench/render-deploy.yml rendered (the database, the provisioning
    Job, the service, with the images site.yml delivers) applied with `kubectl apply
    --server-side` into the empty namespace, then waited for (first converge); the same
    apply and waits again, nothing to change (no-op); the namespace deleted with its volumes;
  - site.yml: its first converge of the application on the running cluster (cluster, images
    and network policy engine current) into the same empty namespace; the same command again
    (`make deploy` with nothing changed); the namespace deleted with its volumes.
Prints the medians, spreads (min to max) and ratios (site.yml / kubectl) and writes them with
every sample to reports/bench-deploy.json. The rendered manifests hold credentials: they live
in a private temporary directory that is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RECAP = re.compile(
    r"^localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", re.M
)


def write_report(name: str, figures: dict[str, object]) -> Path:
    """Writes ``figures`` to reports/NAME.json; returns that path, relative to the clone."""
    report = REPO / "reports" / f"{name}.json"
    report.parent.mkdir(exist_ok=True)
    report.write_text(json.dumps(figures, indent=2) + "\n")
    return report.relative_to(REPO)


def kubectl_binary() -> str:
    found = shutil.which("kubectl")
    if found:
        return found
    status = subprocess.run(  # noqa: S603 (this repository's commands)
        [REPO / "cluster" / "build.sh", "--status", "kubectl"],
        capture_output=True,
        text=True,
        check=True,
    )
    return status.stdout.split()[1]


class Bench:
    def __init__(self, namespace: str, node_port: int, workdir: Path) -> None:
        self.overrides = [
            "-e",
            f"mongodb_namespace={namespace}",
            "-e",
            f"flaskapp_node_port={node_port}",
        ]
        self.workdir = workdir
        self.kubectl_path = kubectl_binary()
        self.names: dict[str, str] = {}
        self.env = {**os.environ, "ANSIBLE_FORCE_COLOR": "0", "PATH": f"{BIN}:{os.environ['PATH']}"}

    def playbook(self, playbook: str, *args: str) -> tuple[float, str]:
        start = time.monotonic()
        result = subprocess.run(  # noqa: S603 (this repository's commands)
            [BIN / "ansible-playbook", playbook, *self.overrides, *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.monotonic() - start
        if result.returncode != 0:
            sys.stderr.write(result.stdout[-4000:] + result.stderr[-2000:])
            raise SystemExit(f"bench-deploy: {playbook} failed (exit {result.returncode})")
        return elapsed, result.stdout

    def kubectl(self, *args: str) -> None:
        subprocess.run(  # noqa: S603 (this repository's commands)
            [
                self.kubectl_path,
                f"--kubeconfig={self.names['kubeconfig']}",
                f"--context={self.names['context']}",
                *args,
            ],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )

    def render(self) -> None:
        self.playbook("bench/render-deploy.yml", "-e", f"bench_render_dir={self.workdir}")
        self.names = json.loads((self.workdir / "bench.json").read_text())

    def kubectl_converge(self) -> float:
        """Apply the rendered manifests and wait as site.yml waits."""
        namespace = self.names["namespace"]
        start = time.monotonic()
        self.kubectl(
            "apply",
            "--server-side",
            "--field-manager=flask-k8s",
            "--force-conflicts",
            "-f",
            str(self.workdir / "mongodb.yaml"),
            "-f",
            str(self.workdir / "flaskapp.yaml"),
        )
        self.kubectl(
            "-n",
            namespace,
            "rollout",
            "status",
            f"statefulset/{self.names['statefulset']}",
            "--timeout=600s",
        )
        self.kubectl(
            "-n",
            namespace,
            "wait",
            "--for=condition=Complete",
            f"job/{self.names['provision_job']}",
            "--timeout=600s",
        )
        self.kubectl(
            "-n",
            namespace,
            "rollout",
            "status",
            f"deployment/{self.names['deployment']}",
            "--timeout=600s",
        )
        self.kubectl(
            "-n",
            namespace,
            "wait",
            f"--for=jsonpath={{.status.readyReplicas}}={self.names['settled_replicas']}",
            f"deployment/{self.names['deployment']}",
            "--timeout=600s",
        )
        return time.monotonic() - start

    def delete_namespace(self) -> None:
        """The bench namespace and every volume of it."""
        self.playbook("playbooks/teardown.yml", "-e", "teardown_delete_data=true")

    def site(self) -> tuple[float, int]:
        elapsed, output = self.playbook("playbooks/site.yml")
        recaps = RECAP.findall(output)
        changed = sum(int(changed) for _, changed, _ in recaps)
        return elapsed, changed


def spread(values: list[float]) -> str:
    return f"{min(values):.1f}-{max(values):.1f}"


def run_round(bench: Bench, kubectl_first: bool, samples: dict[str, list[float]]) -> int:
    """One round in the given order; returns what site.yml's no-op run changed."""
    changed = 0

    def kubectl() -> None:
        samples["kubectl_first"].append(bench.kubectl_converge())
        samples["kubectl_noop"].append(bench.kubectl_converge())
        bench.delete_namespace()

    def site() -> None:
        nonlocal changed
        first, _ = bench.site()
        samples["site_first"].append(first)
        noop, changed = bench.site()
        samples["site_noop"].append(noop)
        bench.delete_namespace()

    for step in (kubectl, site) if kubectl_first else (site, kubectl):
        step()
    return changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--namespace", default="flask-bench")
    parser.add_argument("--node-port", type=int, default=30181)
    options = parser.parse_args()
    if options.rounds < 3:
        parser.error("--rounds must be at least 3, for a median and a spread")

    samples: dict[str, list[float]] = {
        key: [] for key in ("kubectl_first", "kubectl_noop", "site_first", "site_noop")
    }
    noop_changed: list[int] = []
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as directory:
        bench = Bench(options.namespace, options.node_port, Path(directory))
        print(
            f"rendering the manifests for namespace {options.namespace}"
            " (images built and delivered when missing)"
        )
        bench.render()
        bench.delete_namespace()
        for round_number in range(1, options.rounds + 1):
            kubectl_first = round_number % 2 == 1
            noop_changed.append(run_round(bench, kubectl_first, samples))
            print(
                f"round {round_number} ({'kubectl' if kubectl_first else 'site.yml'} first): "
                f"kubectl first {samples['kubectl_first'][-1]:.1f} s, "
                f"no-op {samples['kubectl_noop'][-1]:.1f} s; site.yml first "
                f"{samples['site_first'][-1]:.1f} s, no-op {samples['site_noop'][-1]:.1f} s "
                f"(changed={noop_changed[-1]})",
                flush=True,
            )

    median = {key: statistics.median(values) for key, values in samples.items()}
    figures = {
        "rounds": options.rounds,
        "end_state": (
            f"the database and {bench.names['settled_replicas']} replicas of the service ready"
        ),
        "median_seconds": {key: round(value, 1) for key, value in median.items()},
        "spread_seconds": {key: spread(values) for key, values in samples.items()},
        "samples_seconds": {
            key: [round(value, 1) for value in values] for key, values in samples.items()
        },
        "first_converge_ratio": round(median["site_first"] / median["kubectl_first"], 2),
        "noop_ratio": round(median["site_noop"] / median["kubectl_noop"], 2),
        "noop_changed": noop_changed,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print()
    print(f"both end with {figures['end_state']}; medians (min-max) of {options.rounds} rounds")
    print(f"{'':20}{'site.yml':>20}{'kubectl':>20}{'ratio':>8}")
    for label, key, ratio in (
        ("first converge (s)", "first", figures["first_converge_ratio"]),
        ("no-op re-run (s)", "noop", figures["noop_ratio"]),
    ):
        site = f"{median['site_' + key]:.1f} ({spread(samples['site_' + key])})"
        kubectl = f"{median['kubectl_' + key]:.1f} ({spread(samples['kubectl_' + key])})"
        print(f"{label:20}{site:>20}{kubectl:>20}{ratio:>8.2f}")
    print(f"no-op runs changed: {noop_changed} (0 expected)")
    print(f"figures written to {write_report('bench-deploy', figures)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
