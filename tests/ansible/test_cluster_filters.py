"""The cluster role's filters (flask_k8s.stack's filter/cluster.py) and the filters over
commands (filter/commands.py), each compared, on every shape of input the tasks can give, with
the Jinja expression of the task it replaced; and the bad inputs each one refuses. find_on_path
looks at real files and shell_join's lines run in a real shell."""

import base64
import os
import subprocess

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.flask_k8s.stack.plugins.filter import cluster, commands
from ansible_support import jinja_expression as jinja

STATUS = [
    "minikube /c/bin/minikube-v1.37.0-ab/minikube cached",
    "kubectl /c/bin/kubectl-v1.34.0-cd/kubectl missing",
    "kubeadm /c/bin/kubeadm-v1.34.0-cd/kubeadm missing",
]
MISSING_BEFORE = "lines | select('search', ' missing$') | map('split', ' ') | map('first') | list"


@pytest.mark.parametrize(
    "lines",
    [
        STATUS,
        [],
        [STATUS[0]],
        ["", *STATUS, ""],
        ["a b missing ", "a b cmissing", "amissing", "x missing", " missing", "a b c d missing"],
        ["crictl /path with space/crictl missing"],
    ],
)
def test_cluster_build_missing_as_the_task_named_them(lines):
    assert cluster.cluster_build_missing(lines) == jinja(MISSING_BEFORE, lines=lines)


def test_cluster_build_missing_takes_the_output_as_text():
    assert cluster.cluster_build_missing("\n".join(STATUS) + "\n") == ["kubectl", "kubeadm"]


PATHS_BEFORE = (
    "dict(text.splitlines() | map('split', ' ') | list | map(attribute=0)"
    " | zip(text.splitlines() | map('split', ' ') | list | map(attribute=1)))"
)


@pytest.mark.parametrize("lines", [STATUS[:2], [], [STATUS[0], STATUS[0]]])
def test_cluster_build_paths_as_the_task_read_them(lines):
    text = "\n".join(lines)
    assert cluster.cluster_build_paths(text) == jinja(PATHS_BEFORE, text=text)
    assert cluster.cluster_build_paths(lines) == cluster.cluster_build_paths(text)


def test_cluster_build_paths():
    assert cluster.cluster_build_paths("\n".join(STATUS[:2])) == {
        "minikube": "/c/bin/minikube-v1.37.0-ab/minikube",
        "kubectl": "/c/bin/kubectl-v1.34.0-cd/kubectl",
    }


@pytest.mark.parametrize(
    ("bad", "message"),
    [(None, "output of build.sh"), ({"a": 1}, "output of build.sh"), ("minikube", "no path")],
)
def test_cluster_build_status_filters_refuse_bad_input(bad, message):
    with pytest.raises(AnsibleFilterError, match=message):
        cluster.cluster_build_paths(bad)
    if message != "no path":
        with pytest.raises(AnsibleFilterError, match=message):
            cluster.cluster_build_missing(bad)


LOG_BEFORE = (
    "cluster_build_cache ~ '/build-' ~ (((cluster_build_options | default([]))"
    " + cluster_build_names) | join(' ') | hash('sha1') | truncate(8, true, '')) ~ '.log'"
)


@pytest.mark.parametrize(
    "variables",
    [
        {"cluster_build_names": ["kube-router"]},
        {"cluster_build_names": ["minikube", "kubectl"], "cluster_build_options": ["--minikube"]},
        {"cluster_build_names": ["ünïcode"], "cluster_build_options": []},
        {"cluster_build_names": [], "cluster_build_options": []},
    ],
)
def test_cluster_build_log_as_the_vars_named_it(variables):
    variables = {"cluster_build_cache": "/root/.cache/flask-k8s", **variables}
    arguments = variables.get("cluster_build_options", []) + variables["cluster_build_names"]
    log = cluster.cluster_build_log(arguments, variables["cluster_build_cache"])
    assert log == jinja(LOG_BEFORE, **variables)
    assert len(os.path.basename(log)) == len("build-12345678.log")


@pytest.mark.parametrize(
    ("arguments", "cache", "message"),
    [("all", "/c", "list of arguments"), (None, "/c", "list of arguments"), ([], "", "cache")],
)
def test_cluster_build_log_refuses_bad_input(arguments, cache, message):
    with pytest.raises(AnsibleFilterError, match=message):
        cluster.cluster_build_log(arguments, cache)


def slurped(text):
    return {"content": base64.b64encode(text.encode()).decode(), "encoding": "base64"}


EXIT_BEFORE = "cluster_build_rc.content | default('') | b64decode | trim"


@pytest.mark.parametrize(
    "result",
    [
        slurped("0\n"),
        slurped("2\n"),
        slurped(""),
        slurped(" 0 \n"),
        # The .rc file was not there: slurp failed (failed_when: false).
        {"failed": True, "msg": "file not found: /c/build-1.log.rc"},
    ],
)
def test_cluster_build_exit_as_the_task_read_it(result):
    assert cluster.cluster_build_exit(result) == jinja(EXIT_BEFORE, cluster_build_rc=result)


@pytest.mark.parametrize("bad", [None, "0", {"content": "a"}, {"content": "/w=="}])
def test_cluster_build_exit_refuses_bad_input(bad):
    with pytest.raises(AnsibleFilterError):
        cluster.cluster_build_exit(bad)


IDENTITY_BEFORE = """cluster_identity.found['Namespace/kube-system'].metadata.uid | default('')
    if 'Namespace/kube-system' in cluster_identity.found | default({}) else ''"""
NAMESPACE = {"metadata": {"name": "kube-system", "uid": "6f1c"}, "spec": {}, "status": {}}


@pytest.mark.parametrize(
    "result",
    [
        {"changed": False, "found": {"Namespace/kube-system": NAMESPACE}, "missing": []},
        {"changed": False, "found": {}, "missing": ["Namespace/kube-system"]},
        {"changed": False, "found": {"Namespace/kube-system": {"metadata": {}}}},
        {"changed": False, "found": {"Namespace/kube-system": {}}},
        # failed_when: false on an unreachable API server; skipped when only connecting.
        {"failed": True, "msg": "connection refused"},
        {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"},
    ],
)
def test_cluster_identity_as_the_task_read_it(result):
    assert cluster.cluster_identity(result) == jinja(IDENTITY_BEFORE, cluster_identity=result)


def test_cluster_identity_of_odd_results():
    assert cluster.cluster_identity({"found": None}) == ""
    assert cluster.cluster_identity({"found": {"Namespace/kube-system": None}}) == ""
    with pytest.raises(AnsibleFilterError, match="result of k8s_objects"):
        cluster.cluster_identity(None)


def test_cluster_filters_are_registered():
    names = set(cluster.FilterModule().filters())
    assert names == {name for name in dir(cluster) if name.startswith("cluster_")}


@pytest.fixture
def path_dirs(tmp_path):
    """Three directories: one without minikube, one where minikube is a directory, one with
    the file."""
    empty, with_dir, with_file = (tmp_path / name for name in ("empty", "dir", "file"))
    for directory in (empty, with_dir, with_file):
        directory.mkdir()
    (with_dir / "minikube").mkdir()
    (with_file / "minikube").write_text("#!/bin/sh\n")
    return empty, with_dir, with_file


FIND_BEFORE = (
    "path | split(':') | map('regex_replace', '$', '/minikube')"
    " | select('ansible.builtin.file') | first | default('')"
)


def test_find_on_path_as_the_task_found_it(path_dirs):
    empty, with_dir, with_file = (str(d) for d in path_dirs)
    for path in [
        f"{empty}:{with_dir}:{with_file}",
        f"{with_file}:{empty}",
        f"{empty}:{with_dir}",
        "",
        f"::{with_file}",
        f"{with_file}/",
    ]:
        found = commands.find_on_path("minikube", path)
        assert found == jinja(FIND_BEFORE, path=path), path
        assert (found != "") is jinja(
            "path | split(':') | map('regex_replace', '$', '/minikube')"
            " | select('ansible.builtin.file') | list | length > 0",
            path=path,
        )


def test_find_on_path_finds_the_first(path_dirs):
    empty, with_dir, with_file = path_dirs
    assert commands.find_on_path("minikube", f"{empty}:{with_dir}:{with_file}") == (
        f"{with_file}/minikube"
    )
    assert commands.find_on_path("minikube", f"{empty}:{with_dir}") == ""


@pytest.mark.parametrize(("name", "path"), [("", "/bin"), (None, "/bin"), ("sh", None)])
def test_find_on_path_refuses_bad_input(name, path):
    with pytest.raises(AnsibleFilterError):
        commands.find_on_path(name, path)


ARGVS = [
    ["/repo/cluster/build.sh", "--minikube", "kubectl"],
    ["/a path/with 'quotes'/build.sh", "$HOME", "a;b", "", None, 3, "ü"],
    [],
]


@pytest.mark.parametrize("argv", ARGVS)
def test_shell_join_quotes_as_the_task_did(argv):
    assert commands.shell_join(argv) == jinja("argv | map('quote') | join(' ')", argv=argv)


@pytest.mark.parametrize("argv", ARGVS[:2])
def test_shell_join_gives_the_shell_each_argument(argv):
    line = commands.shell_join(["printf", "%s\\0", *argv])
    out = subprocess.run(["sh", "-c", line], capture_output=True, text=True, check=True).stdout
    assert out.split("\0")[:-1] == ["" if arg is None else str(arg) for arg in argv]


@pytest.mark.parametrize("bad", ["a b", None, {"a": 1}])
def test_shell_join_refuses_what_is_not_a_list(bad):
    with pytest.raises(AnsibleFilterError, match="list of arguments"):
        commands.shell_join(bad)


RESULTS = {
    "lines": {"rc": 0, "stdout_lines": ["a", "started"], "stderr_lines": ["x", "why"]},
    "no lines": {"rc": 0, "stdout_lines": [], "stderr_lines": []},
    "an empty last line": {"rc": 0, "stdout_lines": ["a", ""], "stderr_lines": ["b", ""]},
    "not run": {"rc": 2, "failed": True, "msg": "[Errno 2] No such file or directory"},
}


@pytest.mark.parametrize("result", RESULTS.values(), ids=RESULTS.keys())
@pytest.mark.parametrize("default", ["", "?"])
def test_result_last_line_of_stderr_as_the_tasks_read_it(result, default):
    before = jinja(f"result.stderr_lines | default(['{default}'], true) | last", result=result)
    assert commands.result_last_line(result, "stderr", default) == before


@pytest.mark.parametrize("result", RESULTS.values(), ids=RESULTS.keys())
def test_result_last_line_of_stdout_as_the_tasks_read_it(result):
    before = jinja("result.stdout_lines | last | default('')", result=result)
    assert commands.result_last_line(result) == before


@pytest.mark.parametrize(
    ("result", "stream", "message"),
    [
        (None, "stdout", "registered result"),
        (["a"], "stdout", "registered result"),
        ({"stdout_lines": "a"}, "stdout", "not a list"),
        ({"stdout_lines": ["a"]}, "stdin", "stdout or stderr"),
    ],
)
def test_result_last_line_refuses_bad_input(result, stream, message):
    with pytest.raises(AnsibleFilterError, match=message):
        commands.result_last_line(result, stream)


def test_command_filters_are_registered():
    assert set(commands.FilterModule().filters()) == {
        "find_on_path",
        "shell_join",
        "result_last_line",
    }
