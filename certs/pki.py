"""A tiny certificate authority: pure functions over the `cryptography` package.

Everything returns PEM bytes and touches no files, so the same code serves the
webhook's serving certificate and the local control plane's PKI. TLS keys are
ECDSA P-256 (Go and OpenSSL both accept them); the service-account signing key
is RSA 2048, the kind kube-apiserver documents for `--service-account-*`.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["KeyPair", "SigningKey", "make_ca", "make_serving_cert", "make_client_cert", "make_rsa_keypair"]

# Certificates start an hour in the past so that a small clock skew between the
# issuer and the verifier never makes a fresh certificate "not yet valid".
_BACKDATE = datetime.timedelta(hours=1)


@dataclasses.dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        """Write `<name>.crt` and `<name>.key` (mode 0400: read-only, owner only) into directory; return both
        paths. Each file is written beside and renamed into place, so a reader never sees half of one."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
        for path, data, mode in ((cert_path, self.cert_pem, 0o644), (key_path, self.key_pem, 0o400)):
            partial = path.with_name(path.name + ".new")
            partial.unlink(missing_ok=True)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.chmod(partial, mode)
            os.replace(partial, path)
        return cert_path, key_path


@dataclasses.dataclass(frozen=True)
class SigningKey:
    """An RSA key pair for signing tokens: private key (PKCS#8 PEM) and public key (SPKI PEM)."""

    key_pem: bytes
    public_pem: bytes


def make_ca(common_name: str, *, days: int, permitted_dns: Sequence[str] | None = None,
            permitted_ips: Sequence[str] = ()) -> KeyPair:
    """A self-signed CA that may sign leaf certificates only (path length 0).

    `permitted_dns`: name constraints (RFC 5280, enforced by Go's crypto/x509, so by the API server):
    the CA can vouch only for these DNS names and `permitted_ips`, so its key, if stolen, cannot
    impersonate anything else to a client that trusts the caBundle."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        _builder(name, name, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
    )
    if permitted_dns is not None:
        ips = [ipaddress.ip_network(ip) for ip in permitted_ips]
        builder = builder.add_extension(x509.NameConstraints(
            permitted_subtrees=[*(x509.DNSName(n) for n in permitted_dns), *(x509.IPAddress(n) for n in ips)],
            # no IP SAN at all unless one is permitted
            excluded_subtrees=None if ips else [x509.IPAddress(ipaddress.ip_network("0.0.0.0/0")),
                                                x509.IPAddress(ipaddress.ip_network("::/0"))],
        ), critical=True)
    return KeyPair(_pem_cert(builder.sign(key, hashes.SHA256())), _pem_key(key))


def make_serving_cert(
    ca: KeyPair, *, dns_names: Sequence[str], ip_addresses: Sequence[str], days: int
) -> KeyPair:
    """A TLS server certificate for the given names; Go ignores the CN, so the SANs are what count."""
    if not dns_names and not ip_addresses:
        raise ValueError("a serving certificate needs at least one DNS name or IP address")
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    common_name = dns_names[0] if dns_names else ip_addresses[0]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return _leaf(
        ca,
        subject,
        days=days,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        extra=[x509.SubjectAlternativeName(sans)],
    )


def make_client_cert(ca: KeyPair, *, user: str, groups: Sequence[str], days: int) -> KeyPair:
    """A TLS client certificate as kube-apiserver reads it: CN is the user, each O a group."""
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    subject = x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, user)])
    return _leaf(ca, subject, days=days, usage=ExtendedKeyUsageOID.CLIENT_AUTH, extra=[])


def make_rsa_keypair(bits: int = 2048) -> SigningKey:
    """An RSA key pair, e.g. for `--service-account-signing-key-file` / `--service-account-key-file`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return SigningKey(_pem_key(key), public)


def _leaf(
    ca: KeyPair,
    subject: x509.Name,
    *,
    days: int,
    usage: x509.ObjectIdentifier,
    extra: list[x509.ExtensionType],
) -> KeyPair:
    ca_cert, ca_key = ca.cert, ca.key
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(subject, ca_cert.subject, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(key_cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    for extension in extra:
        builder = builder.add_extension(extension, critical=False)
    return KeyPair(_pem_cert(builder.sign(ca_key, hashes.SHA256())), _pem_key(key))


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, days: int
) -> x509.CertificateBuilder:
    if days <= 0:
        raise ValueError(f"days must be positive, got {days}")
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(*, key_cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
