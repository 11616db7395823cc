"""The lookup flask_k8s.stack.project_path: the project's files, found from the collection."""

import json
from pathlib import Path

import pytest
from ansible.errors import AnsibleLookupError
from ansible_collections.flask_k8s.stack.plugins.lookup import project_path as plugin
from ansible_support import REPO, ansible_env, make_password_file, run

COLLECTION = Path("collections", "ansible_collections", "flask_k8s", "stack")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A project's tree: the collection with one plugin file, and a script beside it."""
    (tmp_path / COLLECTION / "plugins" / "lookup").mkdir(parents=True)
    (tmp_path / COLLECTION / "plugins" / "lookup" / "project_path.py").touch()
    (tmp_path / "cluster").mkdir()
    (tmp_path / "cluster" / "build.sh").touch()
    return tmp_path


def plugin_file(root: Path) -> str:
    return str(root / COLLECTION / "plugins" / "lookup" / "project_path.py")


def test_the_root_is_the_directory_that_holds_the_collection(checkout):
    assert plugin.project_root(plugin_file(checkout)) == checkout


def test_the_root_of_this_checkout_is_the_repository():
    assert plugin.project_root(plugin.__file__) == REPO


@pytest.mark.parametrize(
    "layout",
    [
        # Installed by ansible-galaxy: no collections/ directory above ansible_collections.
        Path("site", "ansible_collections", "flask_k8s", "stack"),
        # No ansible_collections at all.
        Path("flask_k8s", "stack"),
    ],
)
def test_a_collection_outside_a_checkout_says_so(tmp_path, layout):
    file = tmp_path / layout / "plugins" / "lookup" / "project_path.py"
    with pytest.raises(AnsibleLookupError, match="is not inside a checkout of the project"):
        plugin.project_root(str(file))


def test_a_collections_directory_without_this_collection_is_not_a_checkout(tmp_path):
    file = tmp_path / "collections" / "ansible_collections" / "other" / "name" / "x.py"
    with pytest.raises(AnsibleLookupError, match="is not inside a checkout"):
        plugin.project_root(str(file))


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("cluster/build.sh", "cluster/build.sh"),
        ("cluster", "cluster"),
        ("cluster/", "cluster"),
        ("./cluster/../cluster/build.sh", "cluster/build.sh"),
        (".", ""),
    ],
)
def test_a_path_is_absolute_and_normalised(checkout, term, expected):
    assert plugin.project_path(checkout, term) == str(checkout / expected)


def test_a_missing_path_is_named_with_the_root(checkout):
    with pytest.raises(AnsibleLookupError) as error:
        plugin.project_path(checkout, "cluster/missing.sh")
    assert str(error.value) == (
        f"project_path: cluster/missing.sh does not exist in the project at {checkout}."
    )


@pytest.mark.parametrize("term", ["..", "../outside", "cluster/../../outside"])
def test_a_path_that_leaves_the_root_is_refused(checkout, term):
    (checkout.parent / "outside").touch()
    with pytest.raises(AnsibleLookupError, match="leaves the project's root"):
        plugin.project_path(checkout, term)


def test_an_absolute_path_is_refused(checkout):
    with pytest.raises(AnsibleLookupError, match="is absolute"):
        plugin.project_path(checkout, str(checkout / "cluster" / "build.sh"))


@pytest.mark.parametrize("term", ["", "  ", None, 3, ["cluster"], {"path": "cluster"}])
def test_a_term_that_is_not_a_path_is_refused(checkout, term):
    with pytest.raises(AnsibleLookupError, match="must be a non-empty string"):
        plugin.project_path(checkout, term)


def test_the_lookup_returns_one_path_per_term():
    paths = plugin.LookupModule().run(["cluster/build.sh", "images", "."])
    assert paths == [str(REPO / "cluster" / "build.sh"), str(REPO / "images"), str(REPO)]


def test_ansible_finds_the_lookup_by_its_full_name(tmp_path):
    env = ansible_env(make_password_file(tmp_path))
    env["ANSIBLE_LOAD_CALLBACK_PLUGINS"] = "1"
    env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.json"
    result = run(
        [
            "ansible",
            "localhost",
            "-m",
            "ansible.builtin.debug",
            "-a",
            "msg={{ lookup('flask_k8s.stack.project_path', 'cluster/build.sh') }}",
        ],
        env,
    )
    (host,) = json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"].values()
    assert host["msg"] == str(REPO / "cluster" / "build.sh")
