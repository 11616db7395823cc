"""The local cluster's supervisor script, run for real on processes of this host.

cluster-service.sh restarts a component when a file it reads changes, and finds those files
from the component's command line: every file under config/, kubeconfig/ or pki/ that the
command names, and those such files name in turn. These tests run it with a bash process as the
component, in a state directory of their own.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible_support import ROLES_DIR

SCRIPT = ROLES_DIR / "local_cluster" / "files" / "cluster-service.sh"
BASH = os.path.realpath(shutil.which("bash") or "/bin/bash")

pytestmark = pytest.mark.skipif(
    resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 16384,
    reason="cluster-service.sh refuses to start components under an open-file limit below 16384",
)


class Service:
    """One component, NAME, supervised by cluster-service.sh in the state directory ``root``."""

    def __init__(self, root: Path, name: str = "component") -> None:
        self.root = root
        self.name = name

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [str(SCRIPT), *args],
            env={**os.environ, "FLASK_K8S_CLUSTER_DIR": str(self.root)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def ensure(self) -> str:
        return self.run("ensure", self.name, "true", "20")

    def command(self, *args: str) -> None:
        """The command line: bash running until stopped, with ``args`` after its script."""
        lines = [BASH, "-c", "trap 'kill $!; exit' TERM; sleep 600 & wait", self.name, *args]
        (self.root / "run" / f"{self.name}.cmd").write_text("".join(f"{a}\n" for a in lines))

    def deps(self) -> list[str]:
        text = (self.root / "run" / f"{self.name}.deps").read_text()
        return [str(Path(p).relative_to(self.root)) for p in text.splitlines()]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    # Characters a regular expression would read as its own: the state directory's name is
    # matched literally.
    root = tmp_path / "state.d+(1)"
    for sub in ("run", "config", "kubeconfig", "pki", "data", "logs"):
        (root / sub).mkdir(parents=True)
    component = Service(root)
    try:
        yield component
    finally:
        component.run("stop", component.name)


def write(path: Path, text: str) -> None:
    path.write_text(text)


def test_a_component_reads_the_files_its_command_line_names_and_theirs(service: Service) -> None:
    root = service.root
    write(root / "config" / "c.yaml", f"kubeconfig: {root}/kubeconfig/c.kubeconfig\n")
    write(
        root / "kubeconfig" / "c.kubeconfig",
        f"client-certificate: {root}/pki/client.crt\nclient-key: {root}/pki/client.key\n"
        f"certificate-authority: {root}/pki/ca.crt\n",
    )
    for name in ("client.crt", "client.key", "ca.crt", "server.key", "other.crt"):
        write(root / "pki" / name, f"{name}\n")
    write(root / "logs" / "c.log", "a log\n")
    (root / "pki" / "issued").mkdir()
    service.command(
        f"--config={root}/config/c.yaml",
        f"--key={root}/pki/server.key",
        f"--ca={root}/pki/ca.crt",
        f"--data-dir={root}/data",
        f"--cert-dir={root}/pki/issued",
        f"--log-file={root}/logs/c.log",
        f"--missing={root}/pki/absent.crt",
    )
    assert service.ensure() == "started"
    print(service.deps())
    # In the order found; each once; directories, files outside config/, kubeconfig/ and pki/
    # and files that do not exist left out.
    assert service.deps() == [
        "config/c.yaml",
        "pki/server.key",
        "pki/ca.crt",
        "kubeconfig/c.kubeconfig",
        "pki/client.crt",
        "pki/client.key",
    ]
    assert service.ensure() == "unchanged"

    # Files it does not read change: nothing restarts.
    write(root / "pki" / "other.crt", "renewed\n")
    write(root / "logs" / "c.log", "a log\nmore\n")
    assert service.ensure() == "unchanged"

    # A certificate it reads through its configuration file's kubeconfig is renewed.
    write(root / "pki" / "client.crt", "renewed\n")
    assert service.ensure() == "restarted"
    assert service.ensure() == "unchanged"

    # Its configuration file names one more file: that file is now read too.
    write(
        root / "config" / "c.yaml",
        f"kubeconfig: {root}/kubeconfig/c.kubeconfig\nca: {root}/pki/other.crt\n",
    )
    assert service.ensure() == "restarted"
    assert "pki/other.crt" in service.deps()
    write(root / "pki" / "other.crt", "renewed again\n")
    assert service.ensure() == "restarted"


def test_files_that_name_each_other_are_each_read_once(service: Service) -> None:
    root = service.root
    write(root / "config" / "a.yaml", f"next: {root}/config/b.yaml\nself: {root}/config/a.yaml\n")
    write(root / "config" / "b.yaml", f"next: {root}/config/a.yaml\n")
    service.command(f"--config={root}/config/a.yaml")
    assert service.ensure() == "started"
    assert service.deps() == ["config/a.yaml", "config/b.yaml"]
    write(root / "config" / "b.yaml", f"next: {root}/config/a.yaml\nchanged: true\n")
    assert service.ensure() == "restarted"


def test_a_command_that_names_no_file_depends_on_its_command_line_only(service: Service) -> None:
    service.command("--verbose")
    assert service.ensure() == "started"
    assert service.deps() == []
    assert service.ensure() == "unchanged"
    service.command("--verbose", "--one-more")
    assert service.ensure() == "restarted"


def test_a_path_outside_the_state_directory_is_not_read(service: Service, tmp_path: Path) -> None:
    # The same layout under another directory whose name only begins like this one's.
    other = Path(f"{service.root}x")
    (other / "pki").mkdir(parents=True)
    write(other / "pki" / "ca.crt", "ca\n")
    service.command(f"--ca={other}/pki/ca.crt")
    assert service.ensure() == "started"
    assert service.deps() == []
    write(other / "pki" / "ca.crt", "changed\n")
    assert service.ensure() == "unchanged"
