"""The k8s_claim_volumes filter, which names each volume claim's volume and where its data lies
for teardown.yml, compared with the Jinja the play used before, as Ansible renders it."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.flask_k8s.stack.plugins.filter.kubernetes import k8s_claim_volumes
from ansible_support import jinja

# teardown.yml's vars of its loop over the claims, one claim (item) at a time.
VOLUME = """{% set volume = volumes | selectattr('metadata.name', 'equalto',
     item.spec.volumeName | default('')) | first | default({}) %}"""
PATH = """{% set path = volume.spec.local.path | default(volume.spec.hostPath.path | default(
     volume.spec.csi.volumeHandle | default(''))) if volume else '' %}"""
WHERE = (
    VOLUME
    + PATH
    + """{{ ('volume ' ~ volume.metadata.name ~ (' at ' ~ path if path else ''))
   if volume else 'no volume yet' }}"""
)
NAME = VOLUME + "{{ volume.metadata.name | default('') }}"
LIST = """{{ data | map(attribute='claim') | zip(data | map(attribute='where'))
   | map('join', ' (') | map('regex_replace', '$', ')') | join(', ') }}"""


def claim(name: str, volume: object = None) -> dict:
    spec = {"accessModes": ["ReadWriteOnce"]}
    if volume is not None:
        spec["volumeName"] = volume
    return {"metadata": {"name": name, "namespace": "flask"}, "spec": spec}


def volume(name: str, spec: object) -> dict:
    return {"metadata": {"name": name}, "spec": spec}


VOLUMES = [
    volume("pv-local", {"local": {"path": "/var/lib/flask-k8s/volumes/pv-local"}}),
    volume("pv-host", {"hostPath": {"path": "/tmp/hostpath-provisioner/flask/data"}}),
    volume("pv-csi", {"csi": {"driver": "ebs.csi.aws.com", "volumeHandle": "vol-0abc"}}),
    volume("pv-nfs", {"nfs": {"server": "nfs", "path": "/exports"}}),
    volume("pv-empty-path", {"local": {"path": ""}, "csi": {"volumeHandle": "x"}}),
    volume("pv-null-local", {"local": None, "hostPath": {"path": "/h"}}),
    volume("pv-no-spec", None),
    volume("pv-both", {"local": {"fs": "ext4"}, "hostPath": {"path": "/second"}}),
]
CLAIMS = [
    claim("data-mongodb-0", "pv-local"),
    claim("host", "pv-host"),
    claim("csi", "pv-csi"),
    claim("nfs", "pv-nfs"),
    claim("empty-path", "pv-empty-path"),
    claim("null-local", "pv-null-local"),
    claim("no-spec", "pv-no-spec"),
    claim("both", "pv-both"),
    claim("pending"),
    claim("gone", "pv-deleted"),
    claim("null-name", None),
]


@pytest.mark.parametrize("index", range(len(CLAIMS)))
def test_each_entry_is_the_one_the_play_made(index: int) -> None:
    item = CLAIMS[index]
    (entry,) = k8s_claim_volumes([item], VOLUMES)
    assert entry["claim"] == item["metadata"]["name"]
    assert entry["volume"] == jinja(NAME, item=item, volumes=VOLUMES)
    assert entry["where"] == jinja(WHERE, item=item, volumes=VOLUMES)


def test_the_claims_list_is_the_one_the_play_wrote() -> None:
    data = k8s_claim_volumes(CLAIMS, VOLUMES)
    assert [entry["claim"] for entry in data] == [c["metadata"]["name"] for c in CLAIMS]
    assert ", ".join(entry["described"] for entry in data) == jinja(LIST, data=data)
    assert data[0]["described"] == (
        "data-mongodb-0 (volume pv-local at /var/lib/flask-k8s/volumes/pv-local)"
    )
    assert data[8]["described"] == "pending (no volume yet)"


def test_no_claims_and_no_volumes() -> None:
    assert k8s_claim_volumes([], VOLUMES) == []
    assert k8s_claim_volumes([claim("a", "pv")], [])[0]["where"] == "no volume yet"


def test_odd_objects_are_read_as_far_as_they_go() -> None:
    odd_volumes = ["pv", None, {"metadata": None}, volume("pv", {"local": {"path": "/a"}})]
    odd_claims = [None, {"metadata": {"name": 3}}, {"spec": None}, claim("c", "pv")]
    assert k8s_claim_volumes(odd_claims, odd_volumes) == [
        {"claim": "", "volume": "", "where": "no volume yet", "described": " (no volume yet)"},
        {"claim": "", "volume": "", "where": "no volume yet", "described": " (no volume yet)"},
        {"claim": "", "volume": "", "where": "no volume yet", "described": " (no volume yet)"},
        {
            "claim": "c",
            "volume": "pv",
            "where": "volume pv at /a",
            "described": "c (volume pv at /a)",
        },
    ]


@pytest.mark.parametrize(("claims", "volumes"), [(None, []), ([], None), ({}, []), ([], "pv")])
def test_what_is_not_two_lists_is_refused(claims: object, volumes: object) -> None:
    with pytest.raises(AnsibleFilterError, match="k8s_claim_volumes takes"):
        k8s_claim_volumes(claims, volumes)
