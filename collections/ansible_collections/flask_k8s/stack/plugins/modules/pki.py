#!/usr/bin/python
"""Ansible module: a directory of CAs and the certificates they sign, renewed before they end."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pki
short_description: Ensure a directory of CAs, the certificates they sign and key pairs
description:
  - Keeps in O(path) a private key C(NAME.key) and a certificate C(NAME.crt) for each of
    O(authorities) (self-signed) and O(certificates) (signed by one of O(authorities)), and a
    private key with its public key C(NAME.pub) for each of O(key_pairs).
  - A private key is kept once it exists; one that cannot be read, or of another type than
    O(key_type), is generated again.
  - A certificate is issued when it is missing or unreadable, when it no longer matches its
    key, its subject, its names, its usages or its CA, and when it ends within O(renew_days)
    (a renewal). A CA issued again keeps its key and subject, so what it signed stays valid;
    a CA with a new key has everything it signed issued again.
  - Keys are written with mode 0600, certificates and public keys with 0644, each replaced
    whole; O(path) is created with mode 0700.
options:
  path:
    description: Directory of the keys and certificates.
    type: path
    required: true
  key_type:
    description: Type of every private key, RSA of 2048 bits or ECDSA on the P-256 curve.
    type: str
    choices: [rsa, ecdsa]
    default: rsa
  days:
    description: Days a certificate is valid for from when it is issued.
    type: int
    required: true
  ca_days:
    description: Days a CA certificate is valid for from when it is issued.
    type: int
    required: true
  renew_days:
    description: A certificate (or CA) that ends within this many days is issued again.
    type: int
    required: true
  authorities:
    description: The CAs, self-signed, each limited to signing certificates that are no CA.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the CA's files, C(NAME.key) and C(NAME.crt).
        type: str
        required: true
      common_name:
        description: The CA's common name.
        type: str
        required: true
  certificates:
    description: The certificates signed by a CA.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the certificate's files, C(NAME.key) and C(NAME.crt).
        type: str
        required: true
      common_name:
        description: The certificate's common name.
        type: str
        required: true
      organization:
        description: The certificate's organization (Kubernetes reads it as a group).
        type: str
      usage:
        description: Extended key usages.
        type: list
        elements: str
        choices: [serverAuth, clientAuth]
        required: true
      subject_alt_name:
        description: Names the certificate covers, each C(DNS:name) or C(IP:address).
        type: list
        elements: str
        default: []
      ca:
        description: Name of the CA of O(authorities) that signs it; the first when omitted.
        type: str
  key_pairs:
    description: Names of key pairs without a certificate, C(NAME.key) and C(NAME.pub).
    type: list
    elements: str
    default: []
requirements:
  - cryptography >= 40
author: flask-k8s maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Ensure the service's CA and its server certificate
  flask_k8s.stack.pki:
    path: /root/.config/flask-k8s/tls
    key_type: ecdsa
    days: 365
    ca_days: 3650
    renew_days: 30
    authorities:
      - {name: ca, common_name: flask-k8s service CA}
    certificates:
      - name: server
        common_name: flask-service
        usage: [serverAuth]
        subject_alt_name: [DNS:localhost, IP:127.0.0.1]
"""

RETURN = r"""
issued:
  description: Each certificate issued (or, in check mode, to be issued) and why, in issue order.
  type: list
  elements: dict
  returned: success
  sample: [{name: apiserver, reason: "names differ"}]
renewed:
  description: Names of the certificates issued because they ended within O(renew_days).
  type: list
  elements: str
  returned: success
  sample: [ca, apiserver]
summary:
  description: Each of RV(renewed) with the date it ended, comma-separated.
  type: str
  returned: success
  sample: "ca (until 2027-12-05 00:00 UTC), apiserver (until 2027-12-05 00:00 UTC)"
keys:
  description: Names of the private keys generated (or to be generated).
  type: list
  elements: str
  returned: success
"""

import datetime
import ipaddress
import os
import stat
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ansible.module_utils.basic import AnsibleModule

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover (reported by the module)
    HAS_CRYPTOGRAPHY = False

USAGES = {
    "serverAuth": "SERVER_AUTH",
    "clientAuth": "CLIENT_AUTH",
}
if TYPE_CHECKING:
    PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    Extension = TypeVar("Extension", bound=x509.ExtensionType)

# Backdating of a certificate's start, for clocks a little behind this host's.
BACKDATE = datetime.timedelta(minutes=5)


class PkiError(Exception):
    """A plan that cannot be carried out; its message is the module's."""


@dataclass
class Spec:
    """One certificate of the plan (a CA when ca is None)."""

    name: str
    common_name: str
    days: int
    organization: str | None = None
    # Extended key usages and subject alternative names, as parsed by plan().
    usage: list[x509.ObjectIdentifier] = field(default_factory=list)
    names: list[x509.GeneralName] = field(default_factory=list)
    ca: str | None = None


def _subject(spec: Spec) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, spec.common_name)]
    if spec.organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, spec.organization))
    return x509.Name(attributes)


def parse_names(spec_name: str, names: list[str]) -> list[x509.GeneralName]:
    """The subject alternative names `DNS:name` and `IP:address` as general names."""
    parsed: list[x509.GeneralName] = []
    for entry in names:
        kind, colon, value = entry.partition(":")
        if colon and kind == "DNS" and value:
            parsed.append(x509.DNSName(value))
        elif colon and kind == "IP":
            try:
                parsed.append(x509.IPAddress(ipaddress.ip_address(value)))
            except ValueError:
                raise PkiError(f"Certificate {spec_name}: '{entry}' names no IP address.") from None
        else:
            raise PkiError(
                f"Certificate {spec_name}: '{entry}' is neither DNS:name nor IP:address."
            )
    return parsed


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(attribute.value) for attribute in name.get_attributes_for_oid(oid)]


def _extension(cert: x509.Certificate, kind: type[Extension]) -> Extension | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def mismatch(
    cert: x509.Certificate, spec: Spec, key: PrivateKey, ca_cert: x509.Certificate | None
) -> str | None:
    """Why cert no longer serves spec (signed by ca_cert, or self-signed), or None."""
    if cert.public_key() != key.public_key():
        return "its key differs"
    if _attribute(cert.subject, NameOID.COMMON_NAME) != [spec.common_name] or _attribute(
        cert.subject, NameOID.ORGANIZATION_NAME
    ) != ([spec.organization] if spec.organization else []):
        return "its subject differs"
    constraints = _extension(cert, x509.BasicConstraints)
    if bool(constraints and constraints.ca) != (spec.ca is None):
        return "its CA flag differs"
    if spec.ca is not None:
        usages = _extension(cert, x509.ExtendedKeyUsage)
        if set(usages or []) != set(spec.usage):
            return "its usages differ"
        sans = _extension(cert, x509.SubjectAlternativeName)
        if set(sans or []) != set(spec.names):
            return "its names differ"
    try:
        cert.verify_directly_issued_by(ca_cert or cert)
    except (ValueError, TypeError, InvalidSignature):
        return "its CA differs"
    return None


def issue(
    spec: Spec,
    key: PrivateKey,
    ca_cert: x509.Certificate | None,
    ca_key: PrivateKey | None,
    now: datetime.datetime,
) -> x509.Certificate:
    """A certificate for spec and key, signed by ca_key (self-signed by key when no CA)."""
    issuer = ca_cert.subject if ca_cert is not None else _subject(spec)
    signer = ca_key if ca_cert is not None else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_subject(spec))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=spec.days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
        )
    )
    if ca_cert is None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=0), critical=True
        ).add_extension(_key_usage(signing=True, encipherment=False), critical=True)
    else:
        builder = (
            builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(
                _key_usage(signing=False, encipherment=isinstance(key, rsa.RSAPrivateKey)),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(spec.usage), critical=False)
        )
        if spec.names:
            builder = builder.add_extension(x509.SubjectAlternativeName(spec.names), False)
    return builder.sign(signer, hashes.SHA256())


def _key_usage(signing: bool, encipherment: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signing,
        crl_sign=signing,
        encipher_only=False,
        decipher_only=False,
    )


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _write(path: str, data: bytes, mode: int) -> None:
    """Replaces path whole with data, with mode."""
    directory = os.path.dirname(path)
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".pki-")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


class Pki:
    """The keys and certificates of one directory, brought to the plan."""

    def __init__(self, path: str, key_type: str, check_mode: bool) -> None:
        self.path = path
        self.key_type = key_type
        self.check_mode = check_mode
        self.keys: list[str] = []
        self.issued: list[dict[str, str]] = []
        self.renewed: list[str] = []
        self.ends: list[str] = []

    def _file(self, name: str, suffix: str) -> str:
        return os.path.join(self.path, name + suffix)

    def _new_key(self) -> PrivateKey:
        if self.key_type == "ecdsa":
            return ec.generate_private_key(ec.SECP256R1())
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def _right_type(self, key: object) -> bool:
        if self.key_type == "ecdsa":
            return isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
        return isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048

    def key(self, name: str) -> PrivateKey:
        """NAME.key, generated when missing, unreadable or of another type."""
        data = _read(self._file(name, ".key"))
        if data is not None:
            try:
                key = serialization.load_pem_private_key(data, password=None)
            except (ValueError, TypeError):
                key = None
            if key is not None and self._right_type(key):
                return key
        key = self._new_key()
        self.keys.append(name)
        if not self.check_mode:
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _write(self._file(name, ".key"), pem, 0o600)
        return key

    def certificate(
        self,
        spec: Spec,
        ca: tuple[x509.Certificate, PrivateKey] | None,
        renew_before: datetime.datetime,
        now: datetime.datetime,
    ) -> tuple[x509.Certificate, PrivateKey]:
        """NAME.crt for spec, issued when it does not serve it or ends before renew_before,
        and its key."""
        key = self.key(spec.name)
        ca_cert, ca_key = ca if ca is not None else (None, None)
        data = _read(self._file(spec.name, ".crt"))
        if data is None:
            reason: str | None = "it is missing"
        else:
            try:
                cert = x509.load_pem_x509_certificate(data)
            except ValueError:
                reason = "it cannot be read"
            else:
                reason = mismatch(cert, spec, key, ca_cert)
                end = cert.not_valid_after_utc
                if reason is None and end <= renew_before:
                    reason = "it ends within the renewal days"
                    self.renewed.append(spec.name)
                    self.ends.append(f"{spec.name} (until {end:%Y-%m-%d %H:%M} UTC)")
                if reason is None:
                    return cert, key
        self.issued.append({"name": spec.name, "reason": reason})
        cert = issue(spec, key, ca_cert, ca_key, now)
        if not self.check_mode:
            _write(
                self._file(spec.name, ".crt"), cert.public_bytes(serialization.Encoding.PEM), 0o644
            )
        return cert, key

    def key_pair(self, name: str) -> None:
        """NAME.key and its public key NAME.pub."""
        public = (
            self.key(name)
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        if _read(self._file(name, ".pub")) != public:
            self.issued.append({"name": f"{name}.pub", "reason": "it differs from its key"})
            if not self.check_mode:
                _write(self._file(name, ".pub"), public, 0o644)


def plan(params: dict[str, Any]) -> tuple[list[Spec], list[Spec]]:
    """The CAs and the certificates of the module's parameters, checked against each other."""
    authorities = [
        Spec(name=a["name"], common_name=a["common_name"], days=params["ca_days"])
        for a in params["authorities"]
    ]
    if not authorities:
        raise PkiError("authorities must name at least one CA.")
    ca_names = [a.name for a in authorities]
    certificates = [
        Spec(
            name=c["name"],
            common_name=c["common_name"],
            days=params["days"],
            organization=c.get("organization"),
            usage=[getattr(ExtendedKeyUsageOID, USAGES[u]) for u in c["usage"]],
            names=parse_names(c["name"], c.get("subject_alt_name") or []),
            ca=c.get("ca") or ca_names[0],
        )
        for c in params["certificates"]
    ]
    for cert in certificates:
        if cert.ca not in ca_names:
            raise PkiError(
                f"Certificate {cert.name}: its CA '{cert.ca}' is none of the authorities "
                f"({', '.join(ca_names)})."
            )
        if not cert.usage:
            raise PkiError(f"Certificate {cert.name}: usage names no extended key usage.")
    names = ca_names + [c.name for c in certificates] + list(params["key_pairs"])
    for name in names:
        if not name or "/" in name or name.startswith("."):
            raise PkiError(f"'{name}' is not a file name: a name has no '/' and no leading '.'.")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise PkiError(f"Each name is used once; used more than once: {', '.join(repeated)}.")
    if params["renew_days"] < 0:
        raise PkiError(f"renew_days must not be negative, got {params['renew_days']}.")
    for option in ("days", "ca_days"):
        if params[option] <= params["renew_days"]:
            raise PkiError(
                f"{option} ({params[option]}) must be greater than renew_days "
                f"({params['renew_days']}): a certificate would be renewed on every run."
            )
    return authorities, certificates


def private_directory(path: str, check_mode: bool) -> bool:
    """Whether path had to be created, or made private (mode 0700)."""
    if not os.path.isdir(path):
        if os.path.lexists(path):
            raise PkiError(f"{path} exists and is not a directory.")
        if not check_mode:
            os.makedirs(path, mode=0o700)
            os.chmod(path, 0o700)
        return True
    if stat.S_IMODE(os.stat(path).st_mode) == 0o700:
        return False
    if not check_mode:
        os.chmod(path, 0o700)
    return True


def ensure(params: dict[str, Any], check_mode: bool, now: datetime.datetime) -> dict[str, Any]:
    """The module's result, the directory brought to the plan (unless check_mode)."""
    authorities, certificates = plan(params)
    directory_changed = private_directory(params["path"], check_mode)
    pki = Pki(params["path"], params["key_type"], check_mode)
    renew_before = now + datetime.timedelta(days=params["renew_days"])
    signers = {spec.name: pki.certificate(spec, None, renew_before, now) for spec in authorities}
    for spec in certificates:
        pki.certificate(spec, signers[spec.ca or ""], renew_before, now)
    for name in params["key_pairs"]:
        pki.key_pair(name)
    return {
        "changed": bool(directory_changed or pki.issued or pki.keys),
        "issued": pki.issued,
        "renewed": pki.renewed,
        "summary": ", ".join(pki.ends),
        "keys": pki.keys,
    }


def main() -> None:
    names = {"name": {"type": "str", "required": True}}
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "key_type": {"type": "str", "choices": ["rsa", "ecdsa"], "default": "rsa"},
            "days": {"type": "int", "required": True},
            "ca_days": {"type": "int", "required": True},
            "renew_days": {"type": "int", "required": True},
            "authorities": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {**names, "common_name": {"type": "str", "required": True}},
            },
            "certificates": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    **names,
                    "common_name": {"type": "str", "required": True},
                    "organization": {"type": "str"},
                    "usage": {
                        "type": "list",
                        "elements": "str",
                        "choices": sorted(USAGES),
                        "required": True,
                    },
                    "subject_alt_name": {"type": "list", "elements": "str", "default": []},
                    "ca": {"type": "str"},
                },
            },
            # Names of files, not keys.
            "key_pairs": {"type": "list", "elements": "str", "default": [], "no_log": False},
        },
        supports_check_mode=True,
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg="The Python library cryptography (40 or later) is missing.")
    now = datetime.datetime.now(datetime.UTC)
    try:
        result = ensure(module.params, module.check_mode, now)
    except PkiError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=f"Cannot write in {module.params['path']}: {exc}.")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
