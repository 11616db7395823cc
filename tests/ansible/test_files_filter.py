"""The filters of plugins/filter/files.py: paths under a directory, a role's template files, the
tag of the Flask image, and the retries of a wait. Where a filter stands for a Jinja expression
the roles used before, it is compared with that expression as Ansible renders it."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.flask_k8s.stack.plugins.filter.files import (
    attempts,
    content_tag,
    manifest_templates,
    under,
)
from ansible_support import jinja

ROOT = "/src/project"
EXCLUDES = ["__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".pyc", ".pyo"]

# The tag as roles/image/tasks/flaskapp.yml computed it in Jinja (a folded YAML block, whose
# '\n' Jinja receives as a backslash and an 'n').
CACHES = r"/(__pycache__|\.pytest_cache|\.ruff_cache|\.mypy_cache)/"
TAG_EXPRESSION = r"""{{ [tree.files | rejectattr('path', 'search', caches)
      | map(attribute='path') | map('relpath', root)
      | zip(tree.files | rejectattr('path', 'search', caches) | map(attribute='checksum'))
      | map('join', ' ') | list,
     files.results | map(attribute='image_hash_file')
      | zip(files.results | map(attribute='stat') | map(attribute='checksum', default='absent'))
      | map('join', ' ') | list,
     [base_id]]
   | flatten | sort | join('\n') | hash('sha256') | truncate(12, true, '') }}"""


def stat_result(name: str, stat: dict) -> dict:
    """One result of ansible.builtin.stat in a loop with loop_var image_hash_file."""
    return {"image_hash_file": name, "ansible_loop_var": "image_hash_file", "stat": stat}


TREE = [
    {"path": f"{ROOT}/app/main.py", "checksum": "a" * 40},
    {"path": f"{ROOT}/app/Zeta.py", "checksum": "b" * 40},
    {"path": f"{ROOT}/app/__pycache__/main.cpython-311.opt-1", "checksum": "c" * 40},
    {"path": f"{ROOT}/app/sub/.ruff_cache/x", "checksum": "d" * 40},
    {"path": f"{ROOT}/app/.hidden", "checksum": "e" * 40},
    {"path": f"{ROOT}/lib/alpha.txt", "checksum": "f" * 40},
]
FILES = [
    stat_result("Dockerfile", {"exists": True, "isreg": True, "checksum": "1" * 40}),
    stat_result("requirements.txt", {"exists": False}),
    # A directory: stat gives no checksum.
    stat_result("app", {"exists": True, "isdir": True}),
    stat_result("README.md", {"exists": True, "checksum": "2" * 40}),
]


@pytest.mark.parametrize(
    ("tree", "files", "base_id"),
    [
        (TREE, FILES, "sha256:" + "9" * 64),
        ([], [], "sha256:0"),
        (TREE, [], "sha256:0"),
        ([], FILES, "sha256:0"),
        # Names that differ only by case sort as Jinja sorts them (stable, ignoring case).
        (
            [
                {"path": f"{ROOT}/B", "checksum": "1"},
                {"path": f"{ROOT}/b", "checksum": "2"},
                {"path": f"{ROOT}/a", "checksum": "3"},
            ],
            [stat_result("A", {"checksum": "4"})],
            "Base",
        ),
    ],
)
def test_content_tag_is_the_tag_the_jinja_expression_made(tree, files, base_id):
    expected = jinja(
        TAG_EXPRESSION,
        caches=CACHES,
        tree={"files": tree},
        files={"results": files},
        base_id=base_id,
        root=ROOT,
    )
    tag = content_tag(tree, files, base_id, ROOT, EXCLUDES)
    assert tag == expected
    assert len(tag) == 12


def test_content_tag_changes_with_content_names_and_base_but_not_caches():
    tag = content_tag(TREE, FILES, "base", ROOT, EXCLUDES)
    edited = [{**TREE[0], "checksum": "0" * 40}, *TREE[1:]]
    renamed = [{**TREE[0], "path": f"{ROOT}/app/other.py"}, *TREE[1:]]
    cache = [*TREE, {"path": f"{ROOT}/app/.mypy_cache/new", "checksum": "0" * 40}]
    assert content_tag(edited, FILES, "base", ROOT, EXCLUDES) != tag
    assert content_tag(renamed, FILES, "base", ROOT, EXCLUDES) != tag
    assert content_tag(TREE, FILES, "other base", ROOT, EXCLUDES) != tag
    assert content_tag(cache, FILES, "base", ROOT, EXCLUDES) == tag
    # Without exclusions the caches count.
    assert content_tag(TREE, FILES, "base", ROOT) != tag


def test_content_tag_reads_a_file_without_checksum_as_absent():
    unreadable = [{"path": f"{ROOT}/app/secret"}]
    absent = [{"path": f"{ROOT}/app/secret", "checksum": "absent"}]
    assert content_tag(unreadable, [], "b", ROOT) == content_tag(absent, [], "b", ROOT)
    no_stat = [{"image_hash_file": "x", "ansible_loop_var": "image_hash_file"}]
    assert content_tag([], no_stat, "b", ROOT) == content_tag(
        [], [stat_result("x", {"exists": False})], "b", ROOT
    )


def test_content_tag_names_a_file_by_the_loop_variable_or_item():
    by_item = [{"item": "Dockerfile", "stat": {"checksum": "1" * 40}}]
    assert content_tag([], by_item, "b", ROOT) == content_tag([], FILES[:1], "b", ROOT)


@pytest.mark.parametrize(
    ("tree", "files"),
    [
        ("not a list", []),
        ([], {"results": []}),
        (None, None),
        ([{"checksum": "1"}], []),
        (["/a/path"], []),
        ([{"path": 3}], []),
        ([], [{"stat": {"checksum": "1"}}]),
        ([], [{"ansible_loop_var": "name", "stat": {}}]),
        ([], ["Dockerfile"]),
    ],
)
def test_content_tag_rejects_what_find_and_stat_never_return(tree, files):
    with pytest.raises(AnsibleFilterError):
        content_tag(tree, files, "b", ROOT)


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["app", "lib/x"], [f"{ROOT}/app", f"{ROOT}/lib/x"]),
        ([], []),
        (("Dockerfile",), [f"{ROOT}/Dockerfile"]),
    ],
)
def test_under_prefixes_each_path_as_regex_replace_did(names, expected):
    assert under(names, ROOT) == expected
    old = "{{ names | map('regex_replace', '^', root ~ '/') | list }}"
    assert jinja(old, names=list(names), root=ROOT) == expected


@pytest.mark.parametrize("names", ["app", b"app", None, 3, {"app": 1}])
def test_under_rejects_what_is_not_a_list(names):
    with pytest.raises(AnsibleFilterError):
        under(names, ROOT)


def test_manifest_templates_name_the_template_files():
    assert manifest_templates(["service", "hpa"]) == ["service.yaml.j2", "hpa.yaml.j2"]
    assert manifest_templates([]) == []
    assert manifest_templates(reversed(["a", "b"])) == ["b.yaml.j2", "a.yaml.j2"]
    assert manifest_templates(["pdb"], "/roles/x/templates") == ["/roles/x/templates/pdb.yaml.j2"]
    old = "{{ names | map('regex_replace', '^(.*)$', directory ~ '/\\1.yaml.j2') | list }}"
    assert jinja(old, names=["a", "b-c"], directory="/r/templates") == manifest_templates(
        ["a", "b-c"], "/r/templates"
    )


@pytest.mark.parametrize("names", ["service", b"service", None, 7, {"service": 1}])
def test_manifest_templates_reject_what_is_not_a_list(names):
    with pytest.raises(AnsibleFilterError):
        manifest_templates(names)


@pytest.mark.parametrize("timeout", [300, 301, 1, 0, "300", "12.5", 12.5, "7"])
def test_attempts_are_the_retries_the_jinja_expression_gave(timeout):
    old = "{{ (timeout | int / 2) | round(0, 'ceil') | int }}"
    assert attempts(timeout, 2) == jinja(old, timeout=timeout)


def test_attempts_with_other_delays():
    assert attempts(10, 3) == 4
    assert attempts(9, 3) == 3
    assert attempts(1, 0.5) == 2
    assert attempts(-5, 2) == 0


@pytest.mark.parametrize(
    ("timeout", "delay"), [("abc", 2), (None, 2), (10, 0), (10, -1), (10, "x")]
)
def test_attempts_reject_what_is_not_a_wait(timeout, delay):
    with pytest.raises(AnsibleFilterError):
        attempts(timeout, delay)
