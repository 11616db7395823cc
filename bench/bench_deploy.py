"""Benchmark: playbooks/site.yml against `kubectl apply --server-side` of the same manifests.

    python bench/bench_deploy.py [--rounds 2] [--namespace flask-bench] [--node-port 30181]

Needs a running cluster with the images delivered (`make deploy` first); the deployment under
test goes to a namespace of its own (--namespace, with its own NodePort), so the user's is left
alone. For each round:
  1. kubectl first converge: the manifests bench/render-deploy.yml rendered (the database, the
     provisioning Job, the service, with the images site.yml delivers) applied with
     `kubectl apply --server-side` into the empty namespace, then waited for as site.yml waits
     (the StatefulSet's and Deployment's rollouts, the Job's completion);
  2. kubectl no-op: the same apply and waits again, nothing to change;
  3. the namespace deleted, its volumes with it;
  4. site.yml first converge of the application on the running cluster (cluster, images and
     network policy engine current), into the same empty namespace;
  5. site.yml no-op: the same command again (`make deploy` with nothing changed);
  6. the namespace deleted, its volumes with it.
Prints the medians and their ratios (site.yml / kubectl) and writes them with every sample to
reports/bench-deploy.json. The rendered manifests hold credentials: they live in a private
temporary directory that is removed at the end.
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
        return time.monotonic() - start

    def delete_namespace(self) -> None:
        """The bench namespace and every volume of it."""
        self.playbook("playbooks/teardown.yml", "-e", "teardown_delete_data=true")

    def site(self) -> tuple[float, int]:
        elapsed, output = self.playbook("playbooks/site.yml")
        recaps = RECAP.findall(output)
        changed = sum(int(changed) for _, changed, _ in recaps)
        return elapsed, changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--namespace", default="flask-bench")
    parser.add_argument("--node-port", type=int, default=30181)
    options = parser.parse_args()

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
            samples["kubectl_first"].append(bench.kubectl_converge())
            samples["kubectl_noop"].append(bench.kubectl_converge())
            bench.delete_namespace()
            first, _ = bench.site()
            samples["site_first"].append(first)
            noop, changed = bench.site()
            samples["site_noop"].append(noop)
            noop_changed.append(changed)
            bench.delete_namespace()
            print(
                f"round {round_number}: kubectl first {samples['kubectl_first'][-1]:.1f} s, "
                f"no-op {samples['kubectl_noop'][-1]:.1f} s; site.yml first {first:.1f} s, "
                f"no-op {noop:.1f} s (changed={changed})",
                flush=True,
            )

    median = {key: statistics.median(values) for key, values in samples.items()}
    figures = {
        "rounds": options.rounds,
        "median_seconds": {key: round(value, 1) for key, value in median.items()},
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
    print(f"{'':24}{'site.yml':>10}{'kubectl':>10}{'ratio':>8}")
    print(
        f"{'first converge (s)':24}{median['site_first']:>10.1f}{median['kubectl_first']:>10.1f}"
        f"{figures['first_converge_ratio']:>8.2f}"
    )
    print(
        f"{'no-op re-run (s)':24}{median['site_noop']:>10.1f}{median['kubectl_noop']:>10.1f}"
        f"{figures['noop_ratio']:>8.2f}"
    )
    print(f"no-op runs changed: {noop_changed} (0 expected)")
    print(f"figures written to {write_report('bench-deploy', figures)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
