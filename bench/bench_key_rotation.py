"""Benchmark: an API key rotation under load, the way docs/security.md describes it.

    python bench/bench_key_rotation.py [--rate 20] [--namespace flask-bench-keys]
                                       [--node-port 30182] [--base URL] [--cacert FILE]
                                       [ANSIBLE-PLAYBOOK OPTIONS, e.g. -e cluster_provider=...]

Needs a running cluster with the images delivered (`make deploy` first). The deployment under
test goes to a namespace of its own (--namespace, with its own NodePort): the user's
deployment and vault are left alone. With the vault's keys deployed there, a client sends
GET /data at --rate requests a second, without pause, through:
  1. a deploy with the vault's keys and a new write key (the rotation's first deploy), the
     client using the vault's first write key;
  2. the client moving to the new key;
  3. a deploy without the old key (the second deploy).
Each deploy rolls the Flask pods, which read the keys when they start. Prints for each step
the requests answered and failed (by status or kind), then what the old and the new key get
once the rotation is over, and writes it all to reports/bench-key-rotation.json. The keys
reach ansible-playbook in a 0600 file in a private temporary directory, never on a command
line, and no key is printed. The namespace is deleted, with its data, at the end.
"""

from __future__ import annotations

import argparse
import json
import secrets
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO / "bench"))

from bench_deploy import Bench, write_report  # noqa: E402


def vault_keys() -> list[dict[str, str]]:
    """The API keys of the vault (group_vars/secrets.yml), kept in memory only."""
    shown = subprocess.run(  # noqa: S603 (this repository's commands)
        [BIN / "ansible-vault", "view", "group_vars/secrets.yml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if shown.returncode != 0:
        raise SystemExit(f"bench-key-rotation: the vault cannot be read: {shown.stderr.strip()}")
    keys = yaml.safe_load(shown.stdout).get("vault_flaskapp_api_keys") or []
    if not any(key["scope"] == "write" for key in keys):
        raise SystemExit("bench-key-rotation: the vault has no write key (run `make setup`)")
    return keys


class Client:
    """GET /data at a fixed rate from a few threads, with whichever key is current; each
    outcome is counted under the step running when the request was due."""

    def __init__(self, url: str, rate: float, context: ssl.SSLContext | None) -> None:
        self.url = url
        self.interval = 1.0 / rate
        self.context = context
        self.key = ""
        self.step = "start"
        self.outcomes: dict[str, Counter[str]] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.next_slot = 0
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(8)]

    def request(self, key: str) -> str:
        """The outcome of one GET /data with ``key``: a status, or the kind of failure."""
        request = urllib.request.Request(  # noqa: S310 (the benchmark's own URL)
            f"{self.url}/data?limit=1", headers={"Authorization": f"Bearer {key}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5, context=self.context) as response:  # noqa: S310
                json.loads(response.read())
                return str(response.status)
        except urllib.error.HTTPError as exc:
            return str(exc.code)
        except Exception as exc:  # every failure is counted by its kind
            reason = getattr(exc, "reason", exc)
            return type(reason).__name__

    def _run(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                slot = self.started + self.next_slot * self.interval
                self.next_slot += 1
                step, key = self.step, self.key
            delay = slot - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            outcome = self.request(key)
            with self.lock:
                self.outcomes.setdefault(step, Counter())[outcome] += 1

    def start(self, key: str) -> None:
        self.key = key
        for thread in self.threads:
            thread.start()

    def enter(self, step: str, key: str | None = None) -> None:
        with self.lock:
            self.step = step
            if key is not None:
                self.key = key

    def finish(self) -> dict[str, dict[str, int]]:
        self.stop.set()
        for thread in self.threads:
            thread.join()
        return {step: dict(counts) for step, counts in self.outcomes.items()}


class Deployer(Bench):
    """bench_deploy's runner of playbooks in the bench namespace, deploying given keys."""

    def deploy(self, keys: list[dict[str, str]] | None = None) -> float:
        """site.yml, with ``keys`` in place of the vault's when given; its seconds."""
        if keys is None:
            return round(self.playbook("playbooks/site.yml")[0], 1)
        keys_file = self.workdir / "keys.json"
        keys_file.touch(mode=0o600)
        keys_file.write_text(json.dumps({"flaskapp_api_keys": keys}))
        try:
            return round(self.playbook("playbooks/site.yml", "-e", f"@{keys_file}")[0], 1)
        finally:
            keys_file.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--namespace", default="flask-bench-keys")
    parser.add_argument("--node-port", type=int, default=30182)
    parser.add_argument("--base", help="the service's URL (default http://127.0.0.1:NODE_PORT)")
    parser.add_argument("--cacert", help="the CA that signed the service's certificate (HTTPS)")
    # Anything else goes to ansible-playbook: -e cluster_provider=minikube ...
    args, ansible_args = parser.parse_known_args()
    if not 0 < args.rate <= 1000:
        parser.error(
            f"--rate must be above 0 and at most 1000 requests a second, not {args.rate:g}"
        )
    if not 30000 <= args.node_port <= 32767:
        parser.error(f"--node-port must be in the NodePort range 30000-32767, not {args.node_port}")
    base = (args.base or f"http://127.0.0.1:{args.node_port}").rstrip("/")
    context = ssl.create_default_context(cafile=args.cacert) if args.cacert else None

    keys = vault_keys()
    old = next(key for key in keys if key["scope"] == "write")
    new = {
        "name": f"rotated-{secrets.token_hex(3)}",
        "scope": "write",
        "key": secrets.token_urlsafe(32),
    }
    report: dict[str, Any] = {"rate": args.rate, "old_key": old["name"], "new_key": new["name"]}
    with tempfile.TemporaryDirectory(prefix="bench-keys-") as workdir:
        deployer = Deployer(args.namespace, args.node_port, Path(workdir))
        deployer.overrides += ansible_args
        try:
            print(f"deploying into {args.namespace} with the vault's keys", flush=True)
            report["first_deploy_seconds"] = deployer.deploy()
            client = Client(base, args.rate, context)
            wrong = client.request(secrets.token_urlsafe(32))
            if wrong != "401":
                raise SystemExit(f"bench-key-rotation: a wrong key got {wrong}, not 401")
            client.start(old["key"])
            time.sleep(5)
            print(
                f"1. deploy with the new key {new['name']} added; the client uses {old['name']}",
                flush=True,
            )
            client.enter("1 deploy adding the new key")
            report["add_deploy_seconds"] = deployer.deploy([*keys, new])
            client.enter("2 client moves to the new key", new["key"])
            time.sleep(10)
            print(f"3. deploy without the old key {old['name']}", flush=True)
            client.enter("3 deploy removing the old key")
            kept = [key for key in keys if key["name"] != old["name"]]
            report["remove_deploy_seconds"] = deployer.deploy([*kept, new])
            client.enter("4 after the rotation")
            time.sleep(5)
            report["steps"] = client.finish()
            report["after"] = {
                "old key": client.request(old["key"]),
                "new key": client.request(new["key"]),
            }
        finally:
            print(f"deleting {args.namespace} and its data", flush=True)
            deployer.delete_namespace()

    print(f"\nkey rotation under load at {args.rate:g} requests/s (GET /data):")
    print(f"{'step':<34}{'answered':>10}{'failed':>8}  failures")
    for step, counts in report["steps"].items():
        answered = counts.get("200", 0)
        failures = {kind: n for kind, n in counts.items() if kind != "200"}
        print(f"{step:<34}{answered:>10}{sum(failures.values()):>8}  {failures or ''}")
    after = report["after"]
    print(
        f"deploys: add {report['add_deploy_seconds']} s,"
        f" remove {report['remove_deploy_seconds']} s;"
        f" afterwards the old key gets {after['old key']}, the new key {after['new key']}"
    )
    print(f"written to {write_report('bench-key-rotation', report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
