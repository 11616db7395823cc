"""The Jinja tests of plugins/test/kubernetes.py and plugins/test/mappings.py, which decide
whether a role's objects are current and whether a setting is another role's output. Each is
compared with the Jinja expression the roles used before, as Ansible renders it, on the objects
that expression read, and checked on the shapes it could not read."""

import pytest
from ansible_collections.flask_k8s.stack.plugins.test.kubernetes import (
    k8s_daemonset_ready,
    k8s_fingerprinted,
    k8s_observed,
    k8s_scaled_below,
)
from ansible_collections.flask_k8s.stack.plugins.test.mappings import mapping_with
from ansible_support import jinja

FINGERPRINT = "f" * 64


def deployment(annotations=None, generation=2, observed=2, replicas=3, **status) -> dict:
    obj = {
        "kind": "Deployment",
        "metadata": {"name": "flask", "generation": generation},
        "spec": {},
        "status": dict(status),
    }
    if annotations is not ...:
        obj["metadata"]["annotations"] = annotations
    if observed is not None:
        obj["status"]["observedGeneration"] = observed
    if replicas is not None:
        obj["spec"]["replicas"] = replicas
    return obj


DEPLOYMENTS = [
    {},
    deployment({"flask-k8s.io/fingerprint": FINGERPRINT}),
    deployment({"flask-k8s.io/fingerprint": "other"}),
    deployment(None),
    deployment(...),
    deployment({"other": "x"}),
    deployment({"flask-k8s.io/fingerprint": FINGERPRINT}, generation=3, observed=2),
    deployment({"flask-k8s.io/fingerprint": FINGERPRINT}, observed=None),
    deployment({"flask-k8s.io/fingerprint": FINGERPRINT}, generation=1, observed=2),
    deployment(replicas=None),
    deployment(replicas=1),
    deployment(replicas=0),
    deployment(replicas=5),
]


@pytest.mark.parametrize("obj", DEPLOYMENTS)
def test_fingerprinted_and_observed_as_the_jinja_expression_decided(obj):
    # roles/flaskapp/tasks/current.yml, with the object's presence checked first.
    old = """{{ obj | length > 0
        and (obj.metadata.annotations | default({}, true))['flask-k8s.io/fingerprint'] | default('')
            == fingerprint
        and (obj.status.observedGeneration | default(0)) >= obj.metadata.generation }}"""
    expected = jinja(old, obj=obj, fingerprint=FINGERPRINT)
    assert (k8s_fingerprinted(obj, FINGERPRINT) and k8s_observed(obj)) == expected


@pytest.mark.parametrize("obj", DEPLOYMENTS)
@pytest.mark.parametrize("minimum", [1, 2, 3, "3", 4])
def test_scaled_below_as_the_jinja_expression_decided(obj, minimum):
    old = "{{ obj | length > 0 and (obj.spec.replicas | default(1)) < minimum | int }}"
    assert k8s_scaled_below(obj, minimum) == jinja(old, obj=obj, minimum=minimum)


@pytest.mark.parametrize(
    "obj",
    [None, "Deployment", [], {"metadata": None}, {"metadata": {"annotations": "x"}}, {"status": 1}],
)
def test_objects_of_other_shapes_are_neither_fingerprinted_nor_observed(obj):
    assert not k8s_fingerprinted(obj, FINGERPRINT)
    assert not k8s_observed(obj)
    assert not k8s_daemonset_ready(obj)


@pytest.mark.parametrize(
    ("obj", "minimum", "below"),
    [
        (None, 3, False),
        ({"spec": None}, 3, True),
        ({"spec": {"replicas": None}}, 3, True),
        ({"spec": {"replicas": "2"}}, 3, True),
        ({"kind": "Deployment"}, 1, False),
    ],
)
def test_scaled_below_of_other_shapes(obj, minimum, below):
    assert k8s_scaled_below(obj, minimum) is below


def test_observed_needs_the_generation_reached():
    assert not k8s_observed({"metadata": {"generation": 1}})
    assert not k8s_observed({"metadata": {}, "status": {"observedGeneration": 1}})
    assert k8s_observed({"metadata": {"generation": 0}})
    assert not k8s_observed({"metadata": {"generation": 2}, "status": {"observedGeneration": True}})


def daemonset(fingerprint: str | None = FINGERPRINT, **status) -> dict:
    annotations = {"flask-k8s.io/fingerprint": fingerprint} if fingerprint else {}
    return {"kind": "DaemonSet", "metadata": {"annotations": annotations}, "status": status}


DAEMONSETS = [
    {},
    daemonset(desiredNumberScheduled=2, numberReady=2, updatedNumberScheduled=2),
    daemonset(desiredNumberScheduled=2, numberReady=1, updatedNumberScheduled=2),
    daemonset(desiredNumberScheduled=2, numberReady=2, updatedNumberScheduled=1),
    daemonset(desiredNumberScheduled=0, numberReady=0, updatedNumberScheduled=0),
    daemonset(desiredNumberScheduled=1, numberReady=1),
    daemonset(numberReady=1, updatedNumberScheduled=1),
    daemonset(None, desiredNumberScheduled=1, numberReady=1, updatedNumberScheduled=1),
    daemonset("other", desiredNumberScheduled=1, numberReady=1, updatedNumberScheduled=1),
]


@pytest.mark.parametrize("obj", DAEMONSETS)
def test_daemonset_current_as_the_jinja_expression_decided(obj):
    # roles/network_policy/tasks/current.yml.
    old = """{{ obj | length > 0
        and (obj.metadata.annotations | default({}, true))['flask-k8s.io/fingerprint']
            | default('') == fingerprint
        and (obj.status.desiredNumberScheduled | default(0)) > 0
        and (obj.status.numberReady | default(0)) == obj.status.desiredNumberScheduled
        and (obj.status.updatedNumberScheduled | default(0))
            == obj.status.desiredNumberScheduled }}"""
    expected = jinja(old, obj=obj, fingerprint=FINGERPRINT)
    assert (k8s_fingerprinted(obj, FINGERPRINT) and k8s_daemonset_ready(obj)) == expected


KEYS = ["namespace", "host", "port"]


@pytest.mark.parametrize(
    "value",
    [
        {"namespace": "db", "host": "h", "port": 27017},
        {"namespace": "db", "host": "h", "port": 27017, "extra": 1},
        {"namespace": "db", "host": "h"},
        {},
        "namespace,host,port",
        ["namespace", "host", "port"],
        None,
        27017,
    ],
)
def test_mapping_with_as_the_jinja_expression_decided(value):
    # roles/flaskapp/tasks/validate.yml.
    old = "{{ value is mapping and keys | difference(value) | length == 0 }}"
    assert mapping_with(value, KEYS) == jinja(old, value=value, keys=KEYS)


def test_mapping_with_no_keys_is_any_mapping():
    assert mapping_with({}, [])
    assert not mapping_with([], [])
