"""Each role documents and validates its whole interface."""

import pytest
import yaml
from ansible_support import REPO

ROLES = ["minikube", "existing_cluster", "image", "mongodb", "flaskapp"]


@pytest.mark.parametrize("role", ROLES)
def test_role_has_defaults_meta_argument_specs_and_readme(role):
    base = REPO / "roles" / role
    for part in ("defaults/main.yml", "meta/main.yml", "meta/argument_specs.yml", "README.md"):
        assert (base / part).is_file(), part


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_prefixed_with_the_role_name_and_specified(role):
    base = REPO / "roles" / role
    defaults = yaml.safe_load((base / "defaults" / "main.yml").read_text())
    options = yaml.safe_load((base / "meta" / "argument_specs.yml").read_text())["argument_specs"][
        "main"
    ]["options"]
    readme = (base / "README.md").read_text()
    for name in defaults:
        assert name.startswith(f"{role}_"), name
        assert name in options, f"{name} missing from meta/argument_specs.yml"
        assert name in readme, f"{name} missing from README.md"


@pytest.mark.parametrize("role", ROLES)
def test_every_default_has_a_comment_above_it(role):
    lines = (REPO / "roles" / role / "defaults" / "main.yml").read_text().splitlines()
    for index, line in enumerate(lines):
        if line and not line.startswith((" ", "#", "-")) and line != "---":
            above = lines[index - 1]
            documented = above.startswith("#") or (
                above and not above.startswith(" ") and not above.startswith("#")
            )
            assert documented, line
