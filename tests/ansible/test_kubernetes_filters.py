"""The filters of plugins/filter/kubernetes.py that the roles' tasks call: the fingerprint of
manifests, a node's address, a label selector, the object an apply returned and the contexts of
a kubeconfig. Where a filter stands for a Jinja expression the roles used before, it is compared
with that expression as Ansible renders it."""

import base64

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.flask_k8s.stack.plugins.filter.kubernetes import (
    k8s_applied_object,
    k8s_fingerprint,
    k8s_label_selector,
    k8s_manifests,
    k8s_node_address,
    kubeconfig_contexts,
)
from ansible_support import jinja

RENDERED = ["kind: Service\nmetadata:\n  name: a\n", "kind: Job\nmetadata:\n  name: b\n"]


@pytest.mark.parametrize("extra", [None, [], ["hpa", "tls"]])
def test_fingerprint_is_the_one_the_jinja_expression_made(extra):
    # roles/common/tasks/objects.yml, in a double-quoted YAML string (its \n are newlines).
    old = "{{ (rendered + extra | default([], true)) | join('\n---\n') | hash('sha256') }}"
    assert k8s_fingerprint(RENDERED, extra) == jinja(old, rendered=RENDERED, extra=extra)


def test_fingerprint_changes_with_every_part():
    fingerprint = k8s_fingerprint(RENDERED)
    assert k8s_fingerprint(RENDERED[:1]) != fingerprint
    assert k8s_fingerprint(RENDERED, ["hpa"]) != fingerprint
    assert k8s_fingerprint([]) == k8s_fingerprint([], [])


def test_fingerprint_rejects_one_text():
    with pytest.raises(AnsibleFilterError):
        k8s_fingerprint(RENDERED[0])


def test_manifests_leave_out_the_kinds_asked_for():
    kinds = [m["kind"] for m in k8s_manifests(RENDERED, exclude_kinds=["Job"])]
    assert kinds == ["Service"]
    assert len(k8s_manifests(RENDERED, exclude_kinds=None)) == 2
    assert len(k8s_manifests(RENDERED, exclude_kinds=[])) == 2
    old = "{{ texts | rejectattr('kind', 'in', kinds | default([], true)) | list }}"
    for kinds in (["Job"], None, ["Service", "Job"], ["Pod"]):
        documents = k8s_manifests(RENDERED)
        assert k8s_manifests(RENDERED, exclude_kinds=kinds) == jinja(
            old, texts=documents, kinds=kinds
        )


def node(*addresses: tuple[str, str]) -> dict:
    return {"status": {"addresses": [{"type": t, "address": a} for t, a in addresses]}}


NODE_SHAPES = [
    [],
    [node()],
    [node(("InternalIP", "10.0.0.2"), ("Hostname", "n1"))],
    [
        node(
            ("InternalIP", "10.0.0.2"), ("ExternalIP", "203.0.113.5"), ("ExternalIP", "203.0.113.6")
        )
    ],
    [node(("Hostname", "n1")), node(("ExternalIP", "203.0.113.9"))],
    [{"metadata": {"name": "n1"}}],
    [{"status": {}}],
    [node(("InternalIP", "fd00::2"))],
]


@pytest.mark.parametrize("nodes", NODE_SHAPES)
def test_node_address_is_the_one_the_jinja_expression_chose(nodes):
    # roles/existing_cluster/tasks/connection.yml.
    old = """{{ (addresses | selectattr('type', 'equalto', 'ExternalIP')
                  | map(attribute='address') | list
               + addresses | selectattr('type', 'equalto', 'InternalIP')
                  | map(attribute='address') | list)
              | first | default('') }}"""
    addresses = jinja("{{ nodes[0].status.addresses | default([]) }}", nodes=nodes)
    assert k8s_node_address(nodes) == jinja(old, addresses=addresses)


@pytest.mark.parametrize(
    "nodes",
    [
        None,
        "node",
        {"status": {}},
        ["node"],
        [{"status": "Ready"}],
        [{"status": {"addresses": None}}],
        [{"status": {"addresses": "10.0.0.1"}}],
        [{"status": {"addresses": ["10.0.0.1", {"type": "InternalIP"}]}}],
        [{"status": {"addresses": [{"type": "InternalIP", "address": ""}]}}],
        [{"status": {"addresses": [{"type": "ExternalIP", "address": None}]}}],
    ],
)
def test_node_address_of_nodes_without_a_usable_address_is_empty(nodes):
    assert k8s_node_address(nodes) == ""


def test_node_address_skips_an_unusable_external_address():
    nodes = [node(("ExternalIP", ""), ("InternalIP", "10.0.0.2"))]
    assert k8s_node_address(nodes) == "10.0.0.2"


@pytest.mark.parametrize(
    "labels",
    [
        {"app.kubernetes.io/name": "flask-app", "app.kubernetes.io/instance": "flask"},
        {"a": "1"},
        {},
    ],
)
def test_label_selector_is_the_one_the_jinja_expression_made(labels):
    # roles/flaskapp/tasks/connection.yml.
    old = (
        "{{ labels | dict2items | map(attribute='key') | zip(labels.values())"
        " | map('join', '=') | join(',') }}"
    )
    assert k8s_label_selector(labels) == jinja(old, labels=labels)


@pytest.mark.parametrize("labels", [None, "app=web", ["app", "web"]])
def test_label_selector_rejects_what_is_not_labels(labels):
    with pytest.raises(AnsibleFilterError):
        k8s_label_selector(labels)


DEPLOYMENT = {"kind": "Deployment", "metadata": {"name": "flask"}, "spec": {"replicas": 1}}
SERVICE = {"kind": "Service", "metadata": {"name": "flask"}}


def test_applied_object_of_several_objects():
    applied = {
        "changed": True,
        "result": {"results": [{"result": SERVICE}, {"result": DEPLOYMENT}]},
    }
    assert k8s_applied_object(applied, "Deployment") == DEPLOYMENT
    old = (
        "{{ applied.result.results | map(attribute='result')"
        " | selectattr('kind', 'equalto', 'Deployment') | first }}"
    )
    assert jinja(old, applied=applied) == DEPLOYMENT
    assert k8s_applied_object(applied, "HorizontalPodAutoscaler") == {}


def test_applied_object_of_one_object():
    assert k8s_applied_object({"result": DEPLOYMENT}, "Deployment") == DEPLOYMENT
    assert k8s_applied_object({"result": SERVICE}, "Deployment") == {}


@pytest.mark.parametrize(
    "applied",
    [
        None,
        {},
        {"skipped": True},
        {"result": None},
        {"result": "text"},
        {"result": {"results": []}},
        {"result": {"results": ["x", {"result": None}, {"no": "result"}]}},
    ],
)
def test_applied_object_of_anything_else_is_empty(applied):
    assert k8s_applied_object(applied, "Deployment") == {}


TOKEN = "secret-token-that-never-shows"


def slurped(text: str | bytes) -> dict:
    data = text if isinstance(text, bytes) else text.encode()
    return {"content": base64.b64encode(data).decode(), "encoding": "base64", "source": "/k"}


KUBECONFIG = yaml.safe_dump(
    {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "prod",
        "contexts": [
            {"name": "prod", "context": {"cluster": "c", "user": "u"}},
            {"name": "staging", "context": {"cluster": "c", "user": "u"}},
        ],
        "users": [{"name": "u", "user": {"token": TOKEN}}],
    }
)


@pytest.mark.parametrize(
    ("wanted", "selected"),
    [("", "prod"), (None, "prod"), ("staging", "staging"), ("other", "other")],
)
def test_kubeconfig_contexts_select_the_wanted_or_the_current_context(wanted, selected):
    contexts = kubeconfig_contexts(slurped(KUBECONFIG), wanted)
    assert contexts == {"selected": selected, "names": ["prod", "staging"]}
    assert TOKEN not in str(contexts)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {"selected": "", "names": []}),
        ("---\n", {"selected": "", "names": []}),
        ("- a\n- b\n", {"selected": "", "names": []}),
        ("just text\n", {"selected": "", "names": []}),
        ("current-context: x\n", {"selected": "x", "names": []}),
        ("current-context: null\ncontexts: null\n", {"selected": "", "names": []}),
        ("current-context: 5\ncontexts: {name: a}\n", {"selected": "", "names": []}),
        (
            "contexts: [{name: a}, {context: {}}, x, {name: 7}, null, {name: b}]\n",
            {"selected": "", "names": ["a", "b"]},
        ),
    ],
)
def test_kubeconfig_contexts_of_kubeconfigs_of_every_shape(text, expected):
    assert kubeconfig_contexts(slurped(text)) == expected


@pytest.mark.parametrize(
    "content",
    [
        base64.b64encode(f"users: [{{token: {TOKEN}}}\ncontexts: [".encode()).decode(),
        base64.b64encode(f"{TOKEN}: [\n".encode()).decode(),
        base64.b64encode(b"\xff\xfe\x00bad" + TOKEN.encode()).decode(),
        "not base64 at all " + TOKEN,
    ],
)
def test_kubeconfig_contexts_never_show_a_broken_kubeconfig(content):
    with pytest.raises(AnsibleFilterError) as error:
        kubeconfig_contexts({"content": content, "encoding": "base64"})
    assert TOKEN not in str(error.value)
    assert error.value.__cause__ is None
    assert error.value.__suppress_context__


@pytest.mark.parametrize("value", [None, "", KUBECONFIG, {"content": None}, {"source": "/k"}])
def test_kubeconfig_contexts_take_a_slurp_result(value):
    with pytest.raises(AnsibleFilterError) as error:
        kubeconfig_contexts(value)
    assert TOKEN not in str(error.value)
