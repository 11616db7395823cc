"""HTTPS on the service port: on where the NodePort is reachable beyond this host's loopback,
with a certificate from the project's CA (or the user's own), renewed before it runs out."""

import base64
import datetime
import ssl
import stat
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from ansible_support import BIN, REPO, checked, find, load_documents_of, one, start
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVICE_NAMES = [
    "flask-service",
    "flask-service.flask-mongodb",
    "flask-service.flask-mongodb.svc",
    "flask-service.flask-mongodb.svc.cluster.local",
]


def render_deploy_run(vault, directory: Path, *args: str) -> subprocess.CompletedProcess:
    """site.yml's run up to the cluster for the local provider, with these overrides, rendering
    into `directory` what it would apply."""
    return start(
        [
            BIN / "ansible-playbook",
            "tests/ansible/render-deploy.yml",
            "-e",
            f"flask_k8s_secrets_file={vault.secrets_file}",
            "-e",
            f"render_deploy_dir={directory}",
            "-e",
            "cluster_provider=local",
            *args,
        ],
        vault.env(),
        directory.with_name(directory.name + "-run"),
    ).result()


def render_deploy(vault, directory: Path, *args: str) -> list:
    """The service's manifests site.yml would apply, with these overrides."""
    checked(render_deploy_run(vault, directory, *args))
    return load_documents_of(directory, "flaskapp")


def deployment_container(documents: list) -> dict:
    return one(documents, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def data_of(documents: list, kind: str, name: str, key: str) -> bytes:
    value = one(documents, kind, name)["data"][key]
    return base64.b64decode(value) if kind == "Secret" else value.encode()


def test_tls_is_off_where_only_this_host_s_loopback_reaches_the_node_port(manifests):
    for name, documents in manifests.items():
        if "-local-" not in name:
            continue
        container = deployment_container(documents)
        env = {item["name"] for item in container["env"]}
        assert not env & {"APP_TLS_CERT_FILE", "APP_TLS_KEY_FILE"}, name
        assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTP", name
        assert find(documents, "Secret", "flask-tls") == [], name
        assert find(documents, "ConfigMap", "flask-tls-ca") == [], name


def test_the_pods_serve_https_with_the_certificate_of_a_tls_secret(manifests):
    for name, documents in manifests.items():
        if "-local-" in name:
            continue
        secret = one(documents, "Secret", "flask-tls")
        assert secret["type"] == "kubernetes.io/tls", name
        assert set(secret["data"]) == {"tls.crt", "tls.key"}, name
        template = one(documents, "Deployment")["spec"]["template"]
        spec = template["spec"]
        container = spec["containers"][0]
        env = {item["name"]: item.get("value") for item in container["env"]}
        assert env["APP_TLS_CERT_FILE"] == "/etc/flask-tls/tls.crt", name
        assert env["APP_TLS_KEY_FILE"] == "/etc/flask-tls/tls.key", name
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["scheme"] == "HTTPS", (name, probe)
        assert {"name": "tls", "mountPath": "/etc/flask-tls", "readOnly": True} in container[
            "volumeMounts"
        ]
        (volume,) = [volume for volume in spec["volumes"] if volume["name"] == "tls"]
        assert volume["secret"] == {"secretName": "flask-tls", "defaultMode": 0o440}, name
        assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"]
        assert len(template["metadata"]["annotations"]["checksum/tls"]) == 64, name


def test_the_certificate_covers_the_node_loopback_and_service_names_and_chains_to_the_ca(
    manifests,
):
    nodes = {"mongodb-minikube-hpa": "192.168.49.2", "mongodb-existing-hpa": "192.0.2.3"}
    for name, node in nodes.items():
        documents = manifests[name]
        certificate = x509.load_pem_x509_certificate(
            data_of(documents, "Secret", "flask-tls", "tls.crt")
        )
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sorted(str(ip) for ip in names.get_values_for_type(x509.IPAddress)) == sorted(
            ["127.0.0.1", node]
        )
        assert sorted(names.get_values_for_type(x509.DNSName)) == sorted(
            ["localhost", *SERVICE_NAMES]
        )
        ca = x509.load_pem_x509_certificate(
            data_of(documents, "ConfigMap", "flask-tls-ca", "ca.crt")
        )
        certificate.verify_directly_issued_by(ca)
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        server_key = serialization.load_pem_private_key(
            data_of(documents, "Secret", "flask-tls", "tls.key"), None
        )
        assert server_key.public_key() == certificate.public_key()


def test_the_ca_key_stays_on_this_host_private(manifests, rendered_root):
    tls_dir = rendered_root / "mongodb-existing-hpa" / "tls"
    assert stat.S_IMODE(tls_dir.stat().st_mode) == 0o700
    for key in ("ca.key", "server.key"):
        assert stat.S_IMODE((tls_dir / key).stat().st_mode) == 0o600, key
    ca_key = (tls_dir / "ca.key").read_text()
    body = "".join(ca_key.splitlines()[1:-1])
    encoded = [base64.b64encode(text.encode()).decode() for text in (ca_key, ca_key.strip())]
    for name, documents in manifests.items():
        for document in documents:
            text = str(document)
            assert body not in text, name
            for value in encoded:
                assert value not in text, name


def serve_once(cert: Path, key: Path) -> tuple[HTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def test_a_client_that_trusts_the_ca_file_reaches_the_certificate_by_loopback_names(
    manifests, tmp_path
):
    documents = manifests["ferretdb-minikube-hpa"]
    cert = tmp_path / "tls.crt"
    key = tmp_path / "tls.key"
    ca = tmp_path / "ca.crt"
    cert.write_bytes(data_of(documents, "Secret", "flask-tls", "tls.crt"))
    key.write_bytes(data_of(documents, "Secret", "flask-tls", "tls.key"))
    ca.write_bytes(data_of(documents, "ConfigMap", "flask-tls-ca", "ca.crt"))
    server, port = serve_once(cert, key)
    try:
        for host in ("127.0.0.1", "localhost"):
            result = subprocess.run(
                ["curl", "-sS", "--cacert", ca, f"https://{host}:{port}/"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert (result.returncode, result.stdout) == (0, "ok"), result.stderr
        untrusted = subprocess.run(
            ["curl", "-sS", f"https://127.0.0.1:{port}/"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert untrusted.returncode != 0
    finally:
        server.shutdown()


def not_after(path: Path) -> datetime.datetime:
    return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc


def test_a_rerun_keeps_a_certificate_with_time_left_and_renews_one_close_to_its_end(
    vault, tmp_path
):
    tls_dir = tmp_path / "tls"
    common = ("-e", "flaskapp_tls=true", "-e", f"flaskapp_tls_dir={tls_dir}")
    first = render_deploy(vault, tmp_path / "first", *common, "-e", "flaskapp_tls_days=40")
    issued = (tls_dir / "server.crt").read_bytes()
    ca = (tls_dir / "ca.crt").read_bytes()
    # 40 days left, renewed with fewer than 30: kept, the pods keep their checksum.
    second = render_deploy(vault, tmp_path / "second", *common, "-e", "flaskapp_tls_days=40")
    assert (tls_dir / "server.crt").read_bytes() == issued

    def checksum(documents):
        return one(documents, "Deployment")["spec"]["template"]["metadata"]["annotations"][
            "checksum/tls"
        ]

    assert checksum(first) == checksum(second)
    # Renewed when fewer than 60 days are left: a new certificate from the same CA.
    third = render_deploy(
        vault,
        tmp_path / "third",
        *common,
        "-e",
        "flaskapp_tls_days=365",
        "-e",
        "flaskapp_tls_renew_days=60",
    )
    assert (tls_dir / "server.crt").read_bytes() != issued
    assert (tls_dir / "ca.crt").read_bytes() == ca
    assert not_after(tls_dir / "server.crt") > datetime.datetime.now(datetime.UTC) + (
        datetime.timedelta(days=300)
    )
    assert checksum(third) != checksum(first)


def own_certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.example.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("api.example.test")]), False)
        .sign(key, hashes.SHA256())
    )
    cert_file = directory / "own.crt"
    key_file = directory / "own.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return cert_file, key_file


def test_your_own_certificate_and_key_reach_the_pods_as_given(vault, tmp_path):
    cert_file, key_file = own_certificate(tmp_path)
    tls_dir = tmp_path / "unused-tls"
    documents = render_deploy(
        vault,
        tmp_path / "own",
        "-e",
        "flaskapp_tls=true",
        "-e",
        f"flaskapp_tls_cert_file={cert_file}",
        "-e",
        f"flaskapp_tls_key_file={key_file}",
        "-e",
        f"flaskapp_tls_dir={tls_dir}",
    )
    assert data_of(documents, "Secret", "flask-tls", "tls.crt") == cert_file.read_bytes()
    assert data_of(documents, "Secret", "flask-tls", "tls.key") == key_file.read_bytes()
    assert data_of(documents, "ConfigMap", "flask-tls-ca", "ca.crt") == cert_file.read_bytes()
    assert not tls_dir.exists()


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (
            ("-e", "flaskapp_tls_cert_file={repo}/README.md"),
            "flaskapp_tls_cert_file and flaskapp_tls_key_file go together",
        ),
        (("-e", "flaskapp_tls=sometimes"), "flaskapp_tls must be one of: auto"),
        (
            ("-e", "flaskapp_metrics_port=8000"),
            "flaskapp_metrics_port must differ from flaskapp_container_port (8000), got '8000'.",
        ),
    ],
)
def test_settings_out_of_range_stop_the_run_with_one_sentence(vault, tmp_path, args, sentence):
    filled = [arg.replace("{repo}", str(REPO)) for arg in args]
    result = render_deploy_run(vault, tmp_path / "rendered", *filled)
    assert result.returncode != 0
    assert sentence in " ".join((result.stdout + result.stderr).split())
    assert not (tmp_path / "rendered" / "flaskapp.yaml").exists()
