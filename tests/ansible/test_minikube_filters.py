"""The minikube role's filters (flask_k8s.stack's filter/minikube.py), each compared, on every
shape of input a real minikube, its cache script or a kubeconfig can give, with the Jinja
expression of the task it replaced; and the bad inputs each one refuses."""

import base64
import json

import pytest
from ansible.errors import AnsibleError, AnsibleFilterError
from ansible_collections.flask_k8s.stack.plugins.filter import minikube
from ansible_support import jinja_expression as jinja

RUNNING = {"Name": "p", "Host": "Running", "Kubelet": "Running", "APIServer": "Running"}


def status(rc, *lines):
    return {"rc": rc, "stdout": "\n".join(lines), "stdout_lines": list(lines)}


STATUSES = {
    "running": status(0, json.dumps(RUNNING)),
    "warning before the JSON": status(0, "! a newer minikube exists", json.dumps(RUNNING)),
    "API server stopped": status(0, json.dumps({**RUNNING, "APIServer": "Stopped"})),
    "kubelet missing": status(0, json.dumps({"Host": "Running", "APIServer": "Running"})),
    "stopped": status(7, json.dumps({"Host": "Stopped", "Kubelet": "Stopped"})),
    "nonexistent": status(85, json.dumps({"Name": "p", "Host": "Nonexistent"})),
    "nothing printed": status(0),
    "nothing printed, failed": status(85),
    "several nodes (a JSON list)": status(0, json.dumps([RUNNING, RUNNING])),
    "a JSON string": status(0, '"Running"'),
    "Host null": status(0, json.dumps({**RUNNING, "Host": None})),
    "not JSON, failed": status(1, "minikube: command not found"),
}
# The task's expression before the filter (roles/minikube/tasks/start.yml).
STATUS_JSON = "(minikube_status.stdout_lines | default(['{}'], true) | last | from_json)"
RUNNING_BEFORE = f"""minikube_status.rc == 0
    and ({STATUS_JSON}.Host | default('')) == 'Running'
    and ({STATUS_JSON}.APIServer | default('')) == 'Running'
    and ({STATUS_JSON}.Kubelet | default('')) == 'Running'"""
HOST_BEFORE = f"{STATUS_JSON}.Host | default('')"


@pytest.mark.parametrize("result", STATUSES.values(), ids=STATUSES.keys())
def test_minikube_running_as_the_task_decided(result):
    assert minikube.minikube_running(result) is jinja(RUNNING_BEFORE, minikube_status=result)


def test_minikube_running_only_when_everything_runs():
    running = [name for name, result in STATUSES.items() if minikube.minikube_running(result)]
    assert running == ["running", "warning before the JSON"]


@pytest.mark.parametrize(
    "result",
    [r for name, r in STATUSES.items() if name not in ("Host null", "not JSON, failed")],
    ids=[name for name in STATUSES if name not in ("Host null", "not JSON, failed")],
)
def test_minikube_host_as_the_task_read_it(result):
    assert minikube.minikube_host(result) == jinja(HOST_BEFORE, minikube_status=result)


def test_minikube_host_of_null_is_no_host():
    # The task compared None with 'Running'; '' compares the same.
    assert minikube.minikube_host(STATUSES["Host null"]) == ""
    assert jinja(HOST_BEFORE, minikube_status=STATUSES["Host null"]) is None


def test_minikube_status_refuses_output_that_is_not_json():
    result = status(0, "minikube: command not found")
    with pytest.raises(AnsibleError):
        jinja(HOST_BEFORE, minikube_status=result)
    with pytest.raises(AnsibleFilterError, match="is not JSON"):
        minikube.minikube_host(result)
    with pytest.raises(AnsibleFilterError, match="is not JSON"):
        minikube.minikube_running(result)


@pytest.mark.parametrize("bad", [None, "text", ["list"], 3])
def test_minikube_status_refuses_what_is_not_a_result(bad):
    with pytest.raises(AnsibleFilterError, match="registered result"):
        minikube.minikube_status(bad)
    with pytest.raises(AnsibleFilterError, match="registered result"):
        minikube.minikube_running(bad)


def test_minikube_running_refuses_a_result_without_rc():
    result = {"stdout_lines": [json.dumps(RUNNING)]}
    with pytest.raises(AnsibleError):
        jinja(RUNNING_BEFORE, minikube_status=result)
    with pytest.raises(AnsibleFilterError, match="registered result"):
        minikube.minikube_running(result)


def test_minikube_status_refuses_lines_that_are_not_a_list():
    with pytest.raises(AnsibleFilterError, match="list of lines"):
        minikube.minikube_status({"rc": 0, "stdout_lines": "{}"})


ADDONS = {
    "enabled": json.dumps({"metrics-server": {"Status": "enabled"}, "ingress": {}}),
    "disabled": json.dumps({"metrics-server": {"Status": "disabled"}}),
    "no status": json.dumps({"metrics-server": {"Profile": "p"}}),
    "null status": json.dumps({"metrics-server": {"Status": None}}),
    "not listed": json.dumps({"ingress": {"Status": "enabled"}}),
    "entry not an object": json.dumps({"metrics-server": "enabled"}),
    "a JSON list": json.dumps([{"metrics-server": {"Status": "enabled"}}]),
    "empty object": "{}",
}
ADDON_BEFORE = "((stdout | from_json)['metrics-server'].Status | default('disabled')) != 'enabled'"


@pytest.mark.parametrize("stdout", ADDONS.values(), ids=ADDONS.keys())
def test_minikube_addon_enabled_as_the_task_decided(stdout):
    enable = jinja(ADDON_BEFORE, stdout=stdout)
    assert minikube.minikube_addon_enabled(stdout, "metrics-server") is not enable
    assert enable is (stdout != ADDONS["enabled"])


@pytest.mark.parametrize("stdout", ["", "not json", None])
def test_minikube_addon_enabled_refuses_what_is_not_json(stdout):
    with pytest.raises(AnsibleFilterError):
        minikube.minikube_addon_enabled(stdout, "metrics-server")


PROFILES = {
    "valid and invalid": json.dumps(
        {"valid": [{"Name": "flask-k8s"}, {"Name": "other"}], "invalid": [{"Name": "broken"}]}
    ),
    "null lists": json.dumps({"valid": None, "invalid": None}),
    "no lists": json.dumps({"error": {"Op": "open"}}),
    "invalid only": json.dumps({"invalid": [{"Name": "flask-k8s"}]}),
    "printed nothing": "",
    "a JSON list": json.dumps([{"Name": "flask-k8s"}]),
}
PROFILES_JSON = "(minikube_profiles.stdout | default('{}', true) | from_json)"
PROFILES_BEFORE = f"""({PROFILES_JSON}.valid | default([], true)
    + {PROFILES_JSON}.invalid | default([], true))
    | map(attribute='Name') | list"""


@pytest.mark.parametrize("stdout", PROFILES.values(), ids=PROFILES.keys())
def test_minikube_profile_names_as_the_task_listed_them(stdout):
    names = minikube.minikube_profile_names(stdout)
    assert names == jinja(PROFILES_BEFORE, minikube_profiles={"stdout": stdout})


def test_minikube_profile_names_skips_entries_without_a_name():
    stdout = json.dumps({"valid": [{"Name": "a"}, {"Status": "x"}, "b"], "invalid": []})
    assert minikube.minikube_profile_names(stdout) == ["a"]


def test_minikube_profile_names_refuses_what_is_not_json():
    with pytest.raises(AnsibleFilterError, match="is not JSON"):
        minikube.minikube_profile_names("* Exiting due to MK_USAGE")


METRICS = "registry.k8s.io/metrics-server/metrics-server:v0.8.0"


@pytest.mark.parametrize(
    ("load_images", "node_images"),
    [
        (METRICS, []),
        (METRICS, [METRICS]),
        (METRICS, ["registry.k8s.io/pause:3.10", METRICS]),
        (f"{METRICS} registry.k8s.io/pause:3.10", ["registry.k8s.io/pause:3.10"]),
        ("", []),
    ],
)
def test_minikube_images_to_load_as_the_task_looped(load_images, node_images):
    before = jinja("load_images.split(' ') | reject('in', node_images) | list", **locals())
    assert minikube.minikube_images_to_load(load_images, node_images) == before


@pytest.mark.parametrize(("load_images", "node_images"), [(None, []), (METRICS, METRICS)])
def test_minikube_images_to_load_refuses_bad_input(load_images, node_images):
    with pytest.raises(AnsibleFilterError):
        minikube.minikube_images_to_load(load_images, node_images)


CACHE_OUTPUT = [
    "minikube=/c/bin/minikube-v1.37.0-ab/minikube",
    "kubectl=/c/bin/kubectl-v1.34.0-cd/kubectl",
    "minikube_home=",
    "base_image=flask-k8s/minikube-node:v1",
    "kubernetes_version=v1.34.0",
    "start_args=--driver=docker --kubernetes-version=v1.34.0 --extra-config=a.b=c --force",
    "addon_metrics_server_args=--images=MetricsServer=x --registries=MetricsServer=y",
    f"load_images={METRICS}",
]


@pytest.mark.parametrize(
    "lines",
    [
        CACHE_OUTPUT,
        ["minikube-cache: building image x", *CACHE_OUTPUT, "Key=ignored", "=none", "no value"],
        ["kubernetes_version=v1", "kubernetes_version=v2"],
        [],
    ],
)
def test_minikube_cache_settings_as_the_task_read_them(lines):
    before = jinja("dict(lines | select('match', '^[a-z_]+=') | map('split', '=', 1))", lines=lines)
    assert minikube.minikube_cache_settings(lines) == before


def test_minikube_cache_settings_keeps_equals_signs_in_values():
    settings = minikube.minikube_cache_settings(CACHE_OUTPUT)
    assert settings["start_args"].endswith("--extra-config=a.b=c --force")
    assert settings["minikube_home"] == ""


@pytest.mark.parametrize("bad", [None, "kubernetes_version=v1", {"a": "b"}])
def test_minikube_cache_settings_refuses_what_is_not_lines(bad):
    with pytest.raises(AnsibleFilterError, match="list of lines"):
        minikube.minikube_cache_settings(bad)


ARGV_BEFORE = """['minikube', 'start', '-p', minikube_profile,
     '--cpus=' ~ minikube_cpus, '--memory=' ~ minikube_memory]
    + (minikube_offline_settings.start_args.split(' ') if minikube_offline | bool else
       ['--driver=' ~ minikube_driver, '--kubernetes-version=' ~ minikube_kubernetes_version]
       + (['--force'] if minikube_force | bool else []))
    + minikube_start_arg_list"""
SETTINGS = minikube.minikube_cache_settings(CACHE_OUTPUT)


@pytest.mark.parametrize(
    "variables",
    [
        {"minikube_offline": False, "minikube_force": False, "minikube_start_arg_list": []},
        {"minikube_offline": False, "minikube_force": True, "minikube_start_arg_list": ["--ha"]},
        {"minikube_offline": "false", "minikube_force": "yes", "minikube_start_arg_list": []},
        {"minikube_offline": True, "minikube_force": False, "minikube_start_arg_list": ["--ha"]},
        {"minikube_offline": "true", "minikube_force": True, "minikube_start_arg_list": []},
    ],
)
def test_minikube_start_argv_is_the_command_line_the_task_ran(variables):
    variables = {
        "minikube_profile": "flask-k8s",
        "minikube_cpus": 2,
        "minikube_memory": "4096",
        "minikube_driver": "docker",
        "minikube_kubernetes_version": "v1.34.0",
        "minikube_offline_settings": SETTINGS,
        **variables,
    }
    offline = jinja("minikube_offline | bool", **variables)
    argv = minikube.minikube_start_argv(
        variables["minikube_profile"],
        cpus=variables["minikube_cpus"],
        memory=variables["minikube_memory"],
        driver=variables["minikube_driver"],
        kubernetes_version=variables["minikube_kubernetes_version"],
        force=jinja("minikube_force | bool", **variables),
        extra_args=variables["minikube_start_arg_list"],
        offline_start_args=SETTINGS["start_args"] if offline else None,
    )
    assert argv == jinja(ARGV_BEFORE, **variables)


def test_minikube_start_argv_online():
    argv = minikube.minikube_start_argv("p", 2, 4096, "docker", "v1.34.0", True, ["--ha"])
    assert argv == [
        "minikube", "start", "-p", "p", "--cpus=2", "--memory=4096",
        "--driver=docker", "--kubernetes-version=v1.34.0", "--force", "--ha",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", 2, 4096, "docker", "v1", False, []), "profile name"),
        ((None, 2, 4096, "docker", "v1", False, []), "profile name"),
        (("p", 2, 4096, "docker", "v1", False, "--ha"), "list of arguments"),
        (("p", 2, 4096, "docker", "v1", False, None), "list of arguments"),
        (("p", 2, 4096, "docker", "v1", "yes", []), "boolean"),
        (("p", 2, 4096, "docker", "v1", False, [], ["--a"]), "must be a string"),
    ],
)
def test_minikube_start_argv_refuses_bad_input(args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        minikube.minikube_start_argv(*args)


ENVIRONMENT_BEFORE = """({'MINIKUBE_HOME': minikube_home} if minikube_home | length > 0 else {})
     | combine({'PATH': [minikube_offline_settings.minikube | dirname,
                         minikube_offline_settings.kubectl | dirname,
                         path] | join(':')}
               if minikube_offline | bool and minikube_offline_settings is defined else {})"""


@pytest.mark.parametrize("home", ["", "/srv/minikube"])
@pytest.mark.parametrize("offline", [False, True])
@pytest.mark.parametrize("settings", [None, SETTINGS, {"minikube": "minikube", "kubectl": "/k"}])
@pytest.mark.parametrize("path", ["/usr/bin:/bin", ""])
def test_minikube_environment_as_the_vars_built_it(home, offline, settings, path):
    variables = {"minikube_home": home, "minikube_offline": offline, "path": path}
    if settings is not None:
        variables["minikube_offline_settings"] = settings
    environment = minikube.minikube_environment(home, settings if offline else {}, path)
    assert environment == jinja(ENVIRONMENT_BEFORE, **variables)


def test_minikube_environment_offline():
    assert minikube.minikube_environment("", SETTINGS, "/bin") == {
        "PATH": "/c/bin/minikube-v1.37.0-ab:/c/bin/kubectl-v1.34.0-cd:/bin"
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((None,), "must be a string"),
        (("", ["minikube=/a"]), "must be a mapping"),
        (("", {"minikube": "/a/minikube"}), "name no kubectl"),
    ],
)
def test_minikube_environment_refuses_bad_input(args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        minikube.minikube_environment(*args)


def slurped(text):
    return {"content": base64.b64encode(text.encode()).decode(), "encoding": "base64"}


KUBECONFIGS = {
    "current": "apiVersion: v1\ncurrent-context: flask-k8s\ncontexts: []\n",
    "another": "current-context: other\n",
    "empty current": 'current-context: ""\n',
    "null current": "current-context: null\n",
    "none named": "apiVersion: v1\nkind: Config\n",
    "empty file": "",
    "a list": "- a\n",
}
CONTEXT_BEFORE = "(slurped.content | b64decode | from_yaml)['current-context'] | default('')"


@pytest.mark.parametrize("text", KUBECONFIGS.values(), ids=KUBECONFIGS.keys())
def test_kubeconfig_current_context_as_the_task_read_it(text):
    context = minikube.kubeconfig_current_context(slurped(text))
    assert context == jinja(CONTEXT_BEFORE, slurped=slurped(text))


@pytest.mark.parametrize(
    "bad",
    [None, {}, {"content": None}, {"content": "a"}, {"content": "/w=="}, slurped("a: [b"), "text"],
)
def test_kubeconfig_current_context_refuses_what_is_not_a_kubeconfig(bad):
    with pytest.raises(AnsibleFilterError):
        minikube.kubeconfig_current_context(bad)


def test_filters_are_registered():
    names = set(minikube.FilterModule().filters())
    assert names == {
        name for name in dir(minikube) if name.startswith(("minikube_", "kubeconfig_"))
    }
