#!/usr/bin/python
"""Ansible module: what the local cluster's binaries are, and whether the cluster is healthy."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: local_cluster_probe
short_description: Find the local cluster's binaries, fingerprint its files and check its health
description:
  - Runs C(O(build_script) --status all) and returns the path, build and version of every
    binary, and which are not built yet; fails when it does not report one of O(binaries) or
    O(images).
  - Fingerprints the files of O(fingerprint_paths) (the SHA-256 of the sorted list of their
    SHA-256 sums), reads the fingerprint the last converge stored and the boot it ran in, and
    says whether the containerd runtime directory is gone.
  - Checks the cluster's health, changing nothing - the certificates of O(pki_dir) that expire
    within O(cert_renew_days), the components that do not run, the components, node and
    Deployments that are not ready.
options:
  build_script:
    description: The cluster's build script (cluster/build.sh), run with C(--status all).
    type: path
    required: true
  cache_dir:
    description: Binary cache of the build script (its C(FLASK_K8S_CACHE)).
    type: path
    required: true
  binaries:
    description: Binaries the build script must report.
    type: list
    elements: str
    required: true
  images:
    description: Images built around a binary of the same name; RV(image_refs) names them.
    type: list
    elements: str
    default: []
  image_repository:
    description: Repository the images are named in, as C(<repository>/<image>:<build>).
    type: str
    default: docker.io/flask-k8s
  fingerprint_paths:
    description: Files and directories (walked, symbolic links not followed) fingerprinted.
    type: list
    elements: path
    required: true
  cluster_dir:
    description:
      - The cluster's state directory; C(converged) there holds the fingerprint of the last
        converge and C(boot-id) the boot it ran in.
    type: path
    required: true
  containerd_run_dir:
    description: containerd's runtime directory, gone after a restart of the host.
    type: path
    required: true
  pki_dir:
    description: Directory of the certificates (C(*.crt)).
    type: path
    required: true
  cert_renew_days:
    description: A certificate that ends within this many days is expiring.
    type: int
    required: true
  service_script:
    description: The cluster's service script, run as C(<script> status <service>).
    type: path
    required: true
  services:
    description: Components the service script supervises, in start order.
    type: list
    elements: str
    required: true
  ready_checks:
    description: Component name to a bash command that succeeds when it is ready.
    type: dict
    default: {}
  kubeconfig:
    description: Admin kubeconfig for kubectl (the binary C(kubectl) of RV(bin)).
    type: path
    required: true
  node_name:
    description: Node that must be Ready.
    type: str
    required: true
  deployments:
    description: Deployments of kube-system that must have an available replica.
    type: list
    elements: str
    default: []
notes:
  - Every check runs with a timeout (a readiness check 5 seconds, kubectl 10).
author: flask-k8s maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Find the binaries, fingerprint the cluster's files and check its health
  flask_k8s.stack.local_cluster_probe:
    build_script: /srv/flask-k8s/cluster/build.sh
    cache_dir: /root/.cache/flask-k8s
    binaries: [kubectl, etcd, pause]
    images: [pause]
    fingerprint_paths: [/srv/flask-k8s/roles/local_cluster]
    cluster_dir: /var/lib/flask-k8s/cluster
    containerd_run_dir: /run/flask-k8s/containerd
    pki_dir: /var/lib/flask-k8s/cluster/pki
    cert_renew_days: 30
    service_script: /srv/flask-k8s/roles/local_cluster/files/cluster-service.sh
    services: [containerd, etcd]
    ready_checks:
      etcd: curl -sf http://127.0.0.1:2381/health
    kubeconfig: /var/lib/flask-k8s/cluster/admin.kubeconfig
    node_name: node-1
  register: probe
"""

RETURN = r"""
bin:
  description: Path of every binary the build script reported.
  type: dict
  returned: success
  sample: {kubectl: /root/.cache/flask-k8s/bin/kubectl-v1.33.1-0123456789ab/kubectl}
builds:
  description:
    - Build of every binary, C(<version>-<recipe>) (the name of its directory without C(<name>-)).
  type: dict
  returned: success
  sample: {kubectl: v1.33.1-0123456789ab}
versions:
  description: Version of every binary (its build without the recipe's 12 hex digits).
  type: dict
  returned: success
  sample: {kubectl: v1.33.1}
missing:
  description: Binaries not built yet, in the build script's order.
  type: list
  elements: str
  returned: success
image_refs:
  description: Reference of every image of O(images), C(<repository>/<image>:<build>).
  type: dict
  returned: success
  sample: {pause: docker.io/flask-k8s/pause:3.10-0123456789ab}
files_hash:
  description: Fingerprint of the files of O(fingerprint_paths).
  type: str
  returned: success
stamp:
  description: Fingerprint the last converge stored; empty when none did.
  type: str
  returned: success
boot_id:
  description: Boot the last converge ran in; empty when none was stored.
  type: str
  returned: success
boot_id_now:
  description: The current boot.
  type: str
  returned: success
lost:
  description: O(containerd_run_dir) when it does not exist, else empty.
  type: str
  returned: success
expiring:
  description:
    - Certificates (names without C(.crt)) that end within O(cert_renew_days), in name order.
  type: list
  elements: str
  returned: success
down:
  description: Components of O(services) that do not run, in start order.
  type: list
  elements: str
  returned: success
unready:
  description: Components of O(ready_checks), then C(node), then O(deployments), that are not ready.
  type: list
  elements: str
  returned: success
stopped:
  description: Whether no component of O(services) runs.
  type: bool
  returned: success
healthy:
  description: Whether no certificate is expiring, and every component runs and is ready.
  type: bool
  returned: success
"""

import hashlib
import os
import re
import stat
from collections.abc import Iterator
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.flask_k8s.stack.plugins.module_utils.local_cluster import (
    Runner,
    certificate_name,
    expiring_certificates,
    run,
)

STATUS_LINE = re.compile(r"^(\S+) (\S+) (cached|missing)$")
RECIPE = re.compile(r"-[0-9a-f]{12}$")
BOOT_ID = "/proc/sys/kernel/random/boot_id"


def parse_status(text: str) -> list[dict[str, str]]:
    """The binaries of `build.sh --status` output, one line `<name> <path> cached|missing` each;
    other lines are skipped. The build is the name of the binary's directory without
    `<name>-`, and the version that build without its recipe (`-` and 12 hex digits)."""
    binaries = []
    for line in text.splitlines():
        match = STATUS_LINE.match(line)
        if not match:
            continue
        name, path, state = match.groups()
        directory = os.path.basename(os.path.dirname(path))
        build = directory.removeprefix(f"{name}-")
        binaries.append(
            {
                "name": name,
                "path": path,
                "build": build,
                "version": RECIPE.sub("", build),
                "missing": state == "missing",
            }
        )
    return binaries


def binary_facts(
    binaries: list[dict[str, Any]], images: list[str], repository: str
) -> dict[str, Any]:
    """bin, builds, versions, missing and image_refs of the parsed status."""
    builds = {b["name"]: b["build"] for b in binaries}
    return {
        "bin": {b["name"]: b["path"] for b in binaries},
        "builds": builds,
        "versions": {b["name"]: b["version"] for b in binaries},
        "missing": [b["name"] for b in binaries if b["missing"]],
        "image_refs": {image: f"{repository}/{image}:{builds[image]}" for image in images},
    }


def _regular_files(path: str) -> Iterator[str]:
    """The regular files at or under path, as `find path -type f` lists them."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return
    if stat.S_ISREG(mode):
        yield path
    elif stat.S_ISDIR(mode):
        for directory, _subdirs, names in os.walk(path):
            for name in names:
                file = os.path.join(directory, name)
                if stat.S_ISREG(os.lstat(file).st_mode):
                    yield file


def files_hash(paths: list[str]) -> str:
    """SHA-256 of the `sha256sum` lines of every regular file under paths, sorted by path
    (byte order), as `find PATHS -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum`
    gives it in the C locale. Missing paths and unreadable files are left out."""
    lines = []
    found = [file for path in paths for file in _regular_files(path)]
    for file in sorted(found, key=os.fsencode):
        try:
            with open(file, "rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError:
            continue
        lines.append(f"{digest}  {file}\n")
    return hashlib.sha256("".join(lines).encode(errors="surrogateescape")).hexdigest()


def read_value(path: str) -> str:
    """A file's content without its trailing newlines (as `$(cat path)`); empty when missing."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().rstrip("\n")
    except OSError:
        return ""


def available(output: str) -> bool:
    """Whether kubectl's `{.status.availableReplicas}` is at least 1."""
    try:
        return int(output.strip()) >= 1
    except ValueError:
        return False


def health(params: dict[str, Any], kubectl: str, runner: Runner) -> dict[str, Any]:
    """expiring, down, unready, stopped and healthy."""
    seconds = params["cert_renew_days"] * 86400
    expiring = [
        certificate_name(crt) for crt in expiring_certificates(params["pki_dir"], seconds, runner)
    ]
    service_env = {"FLASK_K8S_CLUSTER_DIR": params["cluster_dir"]}
    services = params["services"]
    down = [s for s in services if runner([params["service_script"], "status", s], service_env)[0]]
    unready = [
        service
        for service, check in params["ready_checks"].items()
        if runner(["timeout", "5", "bash", "-c", check], {})[0] != 0
    ]
    base = ["timeout", "10", kubectl, "--kubeconfig", params["kubeconfig"]]
    ready = '{.status.conditions[?(@.type=="Ready")].status}'
    rc, out, _errors = runner(
        [*base, "get", "node", params["node_name"], "-o", f"jsonpath={ready}"], {}
    )
    if rc != 0 or out.rstrip("\n") != "True":
        unready.append("node")
    for name in params["deployments"]:
        argv = [*base, "-n", "kube-system", "get", "deployment", name]
        rc, out, _errors = runner([*argv, "-o", "jsonpath={.status.availableReplicas}"], {})
        if rc != 0 or not available(out):
            unready.append(name)
    return {
        "expiring": expiring,
        "down": down,
        "unready": unready,
        "stopped": len(down) == len(services),
        "healthy": not (expiring or down or unready),
    }


def probe(params: dict[str, Any], runner: Runner) -> dict[str, Any]:
    """The module's result; raises ValueError when the build script fails or leaves out a
    binary."""
    script = params["build_script"]
    rc, out, errors = runner([script, "--status", "all"], {"FLASK_K8S_CACHE": params["cache_dir"]})
    if rc != 0:
        failed = f"{script} --status all failed (exit status {rc})"
        said = errors.strip().splitlines()[-5:]
        raise ValueError(f"{failed}: {' / '.join(said)}" if said else failed)
    binaries = parse_status(out)
    reported = {b["name"] for b in binaries}
    wanted = dict.fromkeys(params["binaries"] + params["images"])
    unknown = [name for name in wanted if name not in reported]
    if unknown:
        raise ValueError(f"cluster/build.sh did not report: {unknown}")
    facts = binary_facts(binaries, params["images"], params["image_repository"])
    run_dir = params["containerd_run_dir"]
    return {
        **facts,
        "files_hash": files_hash(params["fingerprint_paths"]),
        "stamp": read_value(os.path.join(params["cluster_dir"], "converged")),
        "boot_id": read_value(os.path.join(params["cluster_dir"], "boot-id")),
        "boot_id_now": read_value(BOOT_ID),
        "lost": "" if os.path.isdir(run_dir) else run_dir,
        **health(params, facts["bin"].get("kubectl", "kubectl"), runner),
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "build_script": {"type": "path", "required": True},
            "cache_dir": {"type": "path", "required": True},
            "binaries": {"type": "list", "elements": "str", "required": True},
            "images": {"type": "list", "elements": "str", "default": []},
            "image_repository": {"type": "str", "default": "docker.io/flask-k8s"},
            "fingerprint_paths": {"type": "list", "elements": "path", "required": True},
            "cluster_dir": {"type": "path", "required": True},
            "containerd_run_dir": {"type": "path", "required": True},
            "pki_dir": {"type": "path", "required": True},
            "cert_renew_days": {"type": "int", "required": True},
            "service_script": {"type": "path", "required": True},
            "services": {"type": "list", "elements": "str", "required": True},
            "ready_checks": {"type": "dict", "default": {}},
            "kubeconfig": {"type": "path", "required": True},
            "node_name": {"type": "str", "required": True},
            "deployments": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    try:
        result = probe(module.params, run)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
