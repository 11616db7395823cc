"""Fixtures for the Ansible checks that need no cluster (helpers in ansible_support.py)."""

from pathlib import Path

import pytest
from ansible_support import COMBINATIONS, Vault, create_vault, load_documents, render


@pytest.fixture(scope="session")
def vault(tmp_path_factory) -> Vault:
    return create_vault(tmp_path_factory.mktemp("vault"))


@pytest.fixture(scope="session")
def rendered_root(vault, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("manifests")
    result = render(vault, root, COMBINATIONS)
    vault.render_output = result.stdout + result.stderr
    return root


@pytest.fixture(scope="session")
def manifests(rendered_root) -> dict:
    """Rendered documents per combination name."""
    return {combo["name"]: load_documents(rendered_root / combo["name"]) for combo in COMBINATIONS}
