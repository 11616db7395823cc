"""Fixtures for the Ansible checks that need no cluster (helpers in ansible_support.py).

The long ansible-playbook runs (the manifests of every combination, the override cases, the
README's override examples) start together as the session begins, so that they share the
machine's cores with each other and with the tests that run meanwhile; the fixtures that read
their results wait for them.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible_support import (
    COMBINATIONS,
    Background,
    Vault,
    checked,
    create_vault,
    load_documents,
    render_twins,
)
from ansible_support import start_render as start_render_run
from overrides_support import Deploy, Overrides, start_overrides, start_readme_deploys

LONG_RUNS = ("render_run", "overrides_run", "readme_runs")


@pytest.fixture(scope="session", autouse=True)
def long_runs_started_first(request: pytest.FixtureRequest) -> None:
    needed = {name for item in request.session.items for name in item.fixturenames}
    for name in LONG_RUNS:
        if name in needed:
            request.getfixturevalue(name)


@pytest.fixture(scope="session")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Vault:
    return create_vault(tmp_path_factory.mktemp("vault"))


@pytest.fixture(scope="session")
def manifests_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("manifests")


@pytest.fixture(scope="session")
def render_run(vault: Vault, manifests_root: Path) -> Iterator[Background]:
    background = start_render_run(vault, manifests_root, COMBINATIONS)
    yield background
    background.stop()


@pytest.fixture(scope="session")
def rendered_root(render_run: Background, manifests_root: Path, vault: Vault) -> Path:
    result = checked(render_run.result())
    vault.render_output = result.stdout + result.stderr
    render_twins(manifests_root, COMBINATIONS)
    return manifests_root


@pytest.fixture(scope="session")
def manifests(rendered_root: Path) -> dict:
    """Rendered documents per combination name."""
    return {combo["name"]: load_documents(rendered_root / combo["name"]) for combo in COMBINATIONS}


@pytest.fixture(scope="session")
def overrides_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Overrides]:
    overrides = start_overrides(tmp_path_factory.mktemp("overrides"))
    yield overrides
    overrides.background.stop()


@pytest.fixture(scope="session")
def overrides(overrides_run: Overrides) -> Overrides:
    assert overrides_run.outcomes
    return overrides_run


@pytest.fixture(scope="session")
def readme_runs(
    vault: Vault, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Background]]:
    runs = start_readme_deploys(vault, tmp_path_factory.mktemp("readme"))
    yield runs
    for background in runs.values():
        background.stop()


@pytest.fixture(scope="session")
def readme_deploys(readme_runs: dict[str, Background]) -> dict[str, Deploy]:
    return {name: Deploy.of(background) for name, background in readme_runs.items()}
