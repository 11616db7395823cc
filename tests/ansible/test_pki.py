"""The module flask_k8s.stack.pki: the CAs, certificates and key pairs of a directory, issued
once, kept while they serve their plan, and issued again when they end within the renewal
days or stop matching it. Real keys and certificates, written to real files and read back with
cryptography and openssl."""

import datetime
import json
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.flask_k8s.stack.plugins.modules import pki
from ansible_support import BIN, ansible_env, make_password_file, run
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.UTC)
CERTIFICATES = ["ca", "etcd-ca", "apiserver", "admin", "etcd-server"]


def params(path: Path, **changes: Any) -> dict[str, Any]:
    """A plan of two CAs, a server, a client of the first and a certificate of the second."""
    plan: dict[str, Any] = {
        "path": str(path),
        "key_type": "rsa",
        "days": 100,
        "ca_days": 300,
        "renew_days": 30,
        "authorities": [
            {"name": "ca", "common_name": "test-ca"},
            {"name": "etcd-ca", "common_name": "test-etcd-ca"},
        ],
        "certificates": [
            {
                "name": "apiserver",
                "common_name": "kube-apiserver",
                "organization": None,
                "usage": ["serverAuth"],
                "subject_alt_name": ["DNS:kubernetes", "IP:127.0.0.1", "IP:10.96.0.1"],
                "ca": None,
            },
            {
                "name": "admin",
                "common_name": "admin",
                "organization": "system:masters",
                "usage": ["clientAuth"],
                "subject_alt_name": [],
                "ca": "ca",
            },
            {
                "name": "etcd-server",
                "common_name": "etcd-server",
                "organization": None,
                "usage": ["serverAuth", "clientAuth"],
                "subject_alt_name": ["DNS:localhost"],
                "ca": "etcd-ca",
            },
        ],
        "key_pairs": ["sa"],
    }
    plan.update(changes)
    return plan


def certificate(path: Path, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((path / f"{name}.crt").read_bytes())


def contents(path: Path) -> dict[str, bytes]:
    return {file.name: file.read_bytes() for file in sorted(path.iterdir())}


def openssl_verify(path: Path, ca: str, name: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["openssl", "verify", "-CAfile", path / f"{ca}.crt", path / f"{name}.crt"],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def issued(tmp_path: Path) -> Path:
    path = tmp_path / "pki"
    pki.ensure(params(path), False, NOW)
    return path


def test_a_first_run_issues_every_certificate_and_key_private_in_a_private_directory(
    tmp_path: Path,
):
    path = tmp_path / "pki"
    result = pki.ensure(params(path), False, NOW)
    assert result["changed"] is True
    assert result["issued"] == [
        *({"name": name, "reason": "it is missing"} for name in CERTIFICATES),
        {"name": "sa.pub", "reason": "it differs from its key"},
    ]
    assert result["keys"] == [*CERTIFICATES, "sa"]
    assert (result["renewed"], result["summary"]) == ([], "")
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    for name in [*CERTIFICATES, "sa"]:
        assert stat.S_IMODE((path / f"{name}.key").stat().st_mode) == 0o600, name
    for name in [*(f"{n}.crt" for n in CERTIFICATES), "sa.pub"]:
        assert stat.S_IMODE((path / name).stat().st_mode) == 0o644, name
    keys = [f"{name}.key" for name in [*CERTIFICATES, "sa"]]
    certificates = [f"{name}.crt" for name in CERTIFICATES]
    assert sorted(f.name for f in path.iterdir()) == sorted([*keys, *certificates, "sa.pub"])


def test_each_certificate_chains_to_its_ca_with_its_names_usages_and_subject(issued: Path):
    for ca, name in [("ca", "apiserver"), ("ca", "admin"), ("etcd-ca", "etcd-server")]:
        assert openssl_verify(issued, ca, name).returncode == 0, name
    assert openssl_verify(issued, "etcd-ca", "admin").returncode != 0
    assert openssl_verify(issued, "ca", "etcd-server").returncode != 0
    server = certificate(issued, "apiserver")
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["kubernetes"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == [
        "127.0.0.1",
        "10.96.0.1",
    ]
    usages = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    admin = certificate(issued, "admin")
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "system:masters"
    )
    ca = certificate(issued, "ca")
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert (constraints.critical, constraints.value.ca, constraints.value.path_length) == (
        True,
        True,
        0,
    )
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    ca_days = (ca.not_valid_after_utc - NOW).days
    server_days = (server.not_valid_after_utc - NOW).days
    assert (ca_days, server_days) == (299, 99)
    key = serialization.load_pem_private_key((issued / "apiserver.key").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    assert server.public_key() == key.public_key()
    sa_pub = serialization.load_pem_public_key((issued / "sa.pub").read_bytes())
    sa_key = serialization.load_pem_private_key((issued / "sa.key").read_bytes(), None)
    assert sa_pub == sa_key.public_key()


def test_a_rerun_changes_nothing(issued: Path):
    before = contents(issued)
    result = pki.ensure(params(issued), False, NOW + datetime.timedelta(days=60))
    assert result == {"changed": False, "issued": [], "renewed": [], "summary": "", "keys": []}
    assert contents(issued) == before


def test_certificates_ending_within_the_renewal_days_are_renewed_with_their_keys(issued: Path):
    before = contents(issued)
    later = NOW + datetime.timedelta(days=71)
    result = pki.ensure(params(issued), False, later)
    leaves = ["apiserver", "admin", "etcd-server"]
    assert result["renewed"] == leaves
    assert result["issued"] == [
        {"name": name, "reason": "it ends within the renewal days"} for name in leaves
    ]
    assert result["summary"].startswith("apiserver (until ")
    assert result["keys"] == []
    after = contents(issued)
    for name in leaves:
        assert after[f"{name}.crt"] != before[f"{name}.crt"], name
        assert certificate(issued, name).not_valid_after_utc > later + datetime.timedelta(days=99)
    for name in ["ca.crt", "etcd-ca.crt", *(f"{n}.key" for n in [*CERTIFICATES, "sa"])]:
        assert after[name] == before[name], name


def test_a_renewed_ca_keeps_its_key_and_subject_and_what_it_signed_stays_valid(tmp_path: Path):
    path = tmp_path / "pki"
    plan = params(path, ca_days=60, days=45)
    pki.ensure(plan, False, NOW)
    # 25 days left: the certificates are renewed, the CAs (40 left) kept.
    leaves = pki.ensure(plan, False, NOW + datetime.timedelta(days=20))
    assert leaves["renewed"] == ["apiserver", "admin", "etcd-server"]
    before = contents(path)
    old_ca = certificate(path, "ca")
    # 29 days left for the CAs (34 for the rest): the CAs alone are renewed.
    cas = pki.ensure(plan, False, NOW + datetime.timedelta(days=31))
    assert cas["renewed"] == ["ca", "etcd-ca"]
    assert cas["keys"] == []
    after = contents(path)
    assert {n for n in after if after[n] != before[n]} == {"ca.crt", "etcd-ca.crt"}
    new_ca = certificate(path, "ca")
    assert new_ca.serial_number != old_ca.serial_number
    assert new_ca.subject == old_ca.subject
    assert new_ca.not_valid_after_utc > NOW + datetime.timedelta(days=90)
    for ca, name in [("ca", "apiserver"), ("ca", "admin"), ("etcd-ca", "etcd-server")]:
        certificate(path, name).verify_directly_issued_by(certificate(path, ca))


def test_a_ca_with_a_new_key_has_everything_it_signed_issued_again(issued: Path):
    (issued / "ca.key").unlink()
    before = contents(issued)
    result = pki.ensure(params(issued), False, NOW)
    assert result["keys"] == ["ca"]
    assert result["issued"] == [
        {"name": "ca", "reason": "its key differs"},
        {"name": "apiserver", "reason": "its CA differs"},
        {"name": "admin", "reason": "its CA differs"},
    ]
    assert contents(issued)["etcd-server.crt"] == before["etcd-server.crt"]
    assert contents(issued)["apiserver.key"] == before["apiserver.key"]
    for name in ["apiserver", "admin"]:
        assert openssl_verify(issued, "ca", name).returncode == 0, name


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"subject_alt_name": ["DNS:kubernetes", "IP:10.0.0.1"]}, "its names differ"),
        ({"subject_alt_name": ["DNS:kubernetes", "IP:127.0.0.1"]}, "its names differ"),
        ({"common_name": "apiserver"}, "its subject differs"),
        ({"organization": "system:masters"}, "its subject differs"),
        ({"usage": ["serverAuth", "clientAuth"]}, "its usages differ"),
        ({"ca": "etcd-ca"}, "its CA differs"),
    ],
)
def test_a_certificate_that_no_longer_matches_its_plan_is_issued_again_alone(
    issued: Path, change: dict[str, Any], reason: str
):
    plan = params(issued)
    plan["certificates"][0].update(change)
    before = contents(issued)
    result = pki.ensure(plan, False, NOW)
    assert result["issued"] == [{"name": "apiserver", "reason": reason}]
    after = contents(issued)
    assert after["apiserver.key"] == before["apiserver.key"]
    assert {n for n in after if after[n] != before[n]} == {"apiserver.crt"}
    assert pki.ensure(plan, False, NOW)["changed"] is False


def test_the_order_of_the_names_is_not_a_change(issued: Path):
    plan = params(issued)
    plan["certificates"][0]["subject_alt_name"].reverse()
    assert pki.ensure(plan, False, NOW)["changed"] is False


@pytest.mark.parametrize(
    ("damage", "reason", "new_key"),
    [
        (lambda p: (p / "admin.crt").write_text("not a certificate\n"), "it cannot be read", False),
        (lambda p: (p / "admin.crt").unlink(), "it is missing", False),
        (lambda p: (p / "admin.key").write_text("not a key\n"), "its key differs", True),
        (lambda p: (p / "admin.key").unlink(), "its key differs", True),
    ],
)
def test_a_damaged_certificate_or_key_is_made_again(
    issued: Path, damage: Any, reason: str, new_key: bool
):
    damage(issued)
    result = pki.ensure(params(issued), False, NOW)
    assert result["issued"] == [{"name": "admin", "reason": reason}]
    assert result["keys"] == (["admin"] if new_key else [])
    assert openssl_verify(issued, "ca", "admin").returncode == 0


def test_a_directory_others_can_read_is_made_private_again(issued: Path):
    issued.chmod(0o755)
    assert pki.ensure(params(issued), True, NOW)["changed"] is True
    assert stat.S_IMODE(issued.stat().st_mode) == 0o755
    result = pki.ensure(params(issued), False, NOW)
    assert (result["changed"], result["issued"], result["keys"]) == (True, [], [])
    assert stat.S_IMODE(issued.stat().st_mode) == 0o700


def test_a_lost_public_key_is_written_again_from_its_key(issued: Path):
    (issued / "sa.pub").write_text("other\n")
    result = pki.ensure(params(issued), False, NOW)
    assert (result["issued"], result["keys"]) == (
        [{"name": "sa.pub", "reason": "it differs from its key"}],
        [],
    )


def test_keys_of_another_type_are_generated_again(issued: Path):
    result = pki.ensure(params(issued, key_type="ecdsa"), False, NOW)
    assert result["keys"] == [*CERTIFICATES, "sa"]
    assert [i["name"] for i in result["issued"]] == [*CERTIFICATES, "sa.pub"]
    key = serialization.load_pem_private_key((issued / "admin.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"
    ku = certificate(issued, "admin").extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature
    assert not ku.key_encipherment
    assert openssl_verify(issued, "ca", "admin").returncode == 0
    assert pki.ensure(params(issued, key_type="ecdsa"), False, NOW)["changed"] is False


def test_check_mode_says_what_would_be_issued_and_writes_nothing(tmp_path: Path, issued: Path):
    fresh = tmp_path / "fresh"
    result = pki.ensure(params(fresh), True, NOW)
    assert result["changed"] is True
    assert [i["name"] for i in result["issued"]] == [*CERTIFICATES, "sa.pub"]
    assert not fresh.exists()
    (issued / "ca.key").unlink()
    before = contents(issued)
    result = pki.ensure(params(issued), True, NOW)
    assert [i["name"] for i in result["issued"]] == ["ca", "apiserver", "admin"]
    assert contents(issued) == before


def one_certificate(**fields: Any) -> dict[str, Any]:
    """The certificates option with one certificate x for serverAuth, with these fields."""
    return {"certificates": [{"name": "x", "common_name": "x", "usage": ["serverAuth"], **fields}]}


NOT_A_FILE_NAME = "is not a file name: a name has no '/' and no leading '.'."
RENEWED_EVERY_RUN = "a certificate would be renewed on every run."


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"authorities": []}, "authorities must name at least one CA."),
        (
            one_certificate(ca="other"),
            "Certificate x: its CA 'other' is none of the authorities (ca, etcd-ca).",
        ),
        (
            one_certificate(subject_alt_name=["URI:x"]),
            "Certificate x: 'URI:x' is neither DNS:name nor IP:address.",
        ),
        (
            one_certificate(subject_alt_name=["DNS:"]),
            "Certificate x: 'DNS:' is neither DNS:name nor IP:address.",
        ),
        (
            one_certificate(subject_alt_name=["IP:10.0.0"]),
            "Certificate x: 'IP:10.0.0' names no IP address.",
        ),
        (one_certificate(usage=[]), "Certificate x: usage names no extended key usage."),
        ({"key_pairs": ["ca"]}, "Each name is used once; used more than once: ca."),
        ({"key_pairs": ["../sa"]}, f"'../sa' {NOT_A_FILE_NAME}"),
        ({"key_pairs": [".sa"]}, f"'.sa' {NOT_A_FILE_NAME}"),
        ({"key_pairs": [""]}, f"'' {NOT_A_FILE_NAME}"),
        ({"renew_days": -1}, "renew_days must not be negative, got -1."),
        ({"days": 30}, f"days (30) must be greater than renew_days (30): {RENEWED_EVERY_RUN}"),
        (
            {"ca_days": 10},
            f"ca_days (10) must be greater than renew_days (30): {RENEWED_EVERY_RUN}",
        ),
    ],
)
def test_a_plan_that_cannot_be_carried_out_is_refused_in_one_sentence_before_any_write(
    tmp_path: Path, change: dict[str, Any], message: str
):
    path = tmp_path / "pki"
    with pytest.raises(pki.PkiError) as refused:
        pki.ensure(params(path, **change), False, NOW)
    assert str(refused.value) == message
    assert not path.exists()


def test_a_path_that_is_a_file_is_refused(tmp_path: Path):
    path = tmp_path / "pki"
    path.write_text("")
    with pytest.raises(pki.PkiError, match=r"pki exists and is not a directory\.$"):
        pki.ensure(params(path), False, NOW)


def run_module(tmp_path: Path, arguments: dict[str, Any]) -> dict[str, Any]:
    """The module's result as ansible-playbook reports it (the callback's JSON)."""
    playbook = tmp_path / "pki.yml"
    task = {"flask_k8s.stack.pki": arguments, "register": "result", "ignore_errors": True}
    show = {"ansible.builtin.debug": {"var": "result"}}
    play = {"hosts": "localhost", "gather_facts": False, "tasks": [task, show]}
    playbook.write_text(json.dumps([play]))
    env = ansible_env(make_password_file(tmp_path))
    env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    done = run([BIN / "ansible-playbook", playbook], env)
    tasks = json.loads(done.stdout)["plays"][0]["tasks"]
    return tasks[1]["hosts"]["localhost"]["result"]


def test_the_module_runs_through_ansible_with_its_documented_options(tmp_path: Path):
    path = tmp_path / "pki"
    plan = {key: value for key, value in params(path).items() if key != "key_pairs"}
    first = run_module(tmp_path, plan)
    assert first["changed"] is True
    assert [i["name"] for i in first["issued"]] == CERTIFICATES
    assert run_module(tmp_path, plan)["changed"] is False
    wrong = dict(plan, certificates=[{"name": "x", "common_name": "x", "usage": ["codeSigning"]}])
    refused = run_module(tmp_path, wrong)
    assert refused["failed"] is True
    assert "value of usage must be one or more of: clientAuth, serverAuth" in refused["msg"]
    refused = run_module(tmp_path, dict(plan, renew_days=300))
    assert (
        refused["msg"] == f"days (100) must be greater than renew_days (300): {RENEWED_EVERY_RUN}"
    )
