"""The webhook's TLS material: which names its certificate covers, when to renew it,
and the Secret / caBundle forms the API server needs. Pure: no files, no API calls.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from certs import pki

# Short enough that a leaked key soon stops mattering, long enough to outlive any outage: a replica
# renews the leaf after 2/3 of its life (20 days) and the CA after 2/3 of its (8 months).
CA_DAYS = 365
LEAF_DAYS = 30
#: Renew the serving certificate once this share of its life has passed.
RENEW_AFTER = 2 / 3


@dataclass(frozen=True)
class Bundle:
    """CA + serving certificate, as stored in the webhook's Secret (type kubernetes.io/tls)."""

    ca: pki.KeyPair
    serving: pki.KeyPair

    def to_secret(self, *, name: str, namespace: str) -> dict[str, Any]:
        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode()

        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/name": "kube-elector"}},
            "data": {
                "tls.crt": b64(self.serving.cert_pem),
                "tls.key": b64(self.serving.key_pem),
                "ca.crt": b64(self.ca.cert_pem),
                "ca.key": b64(self.ca.key_pem),
            },
        }

    @classmethod
    def from_secret(cls, secret: dict[str, Any]) -> "Bundle | None":
        """None when the Secret lacks a part or holds something unreadable (it will be remade)."""
        data = secret.get("data") or {}
        try:
            parts = {k: base64.b64decode(data[k]) for k in ("tls.crt", "tls.key", "ca.crt", "ca.key")}
            bundle = cls(pki.KeyPair(parts["ca.crt"], parts["ca.key"]), pki.KeyPair(parts["tls.crt"], parts["tls.key"]))
            bundle.ca.cert, bundle.serving.cert  # parse both, or fail here
            return bundle
        except (KeyError, ValueError, TypeError):
            return None


def service_names(service: str, namespace: str) -> list[str]:
    """The DNS names the API server may use to reach a Service."""
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]


def issue(*, service: str, namespace: str, extra_dns: Sequence[str] = (), extra_ips: Sequence[str] = (),
          ca: pki.KeyPair | None = None) -> Bundle:
    """A serving cert for the Service's names, signed by `ca` (a new CA if None)."""
    names = [*service_names(service, namespace), *extra_dns]
    ca = ca or pki.make_ca("kube-elector-webhook-ca", days=CA_DAYS, permitted_dns=names, permitted_ips=extra_ips)
    serving = pki.make_serving_cert(
        ca, dns_names=names, ip_addresses=list(extra_ips), days=LEAF_DAYS
    )
    return Bundle(ca, serving)


def needs_renewal(cert_pem: bytes, *, now: datetime.datetime, share: float = RENEW_AFTER) -> bool:
    """True once `share` of the validity has passed, so a new certificate is served well before expiry."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return now >= start + (end - start) * share


def covers(bundle: Bundle, names: Sequence[str], ips: Sequence[str] = ()) -> bool:
    """True if the serving cert names every DNS name and IP and was signed by the bundle's CA."""
    cert = bundle.serving.cert
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        cert.verify_directly_issued_by(bundle.ca.cert)
    except (x509.ExtensionNotFound, InvalidSignature, ValueError, TypeError):
        return False
    have_ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return set(names) <= set(san.get_values_for_type(x509.DNSName)) and set(ips) <= have_ips


def ca_bundle_contains(bundle_pem: str | None, ca_pem: bytes) -> bool:
    """Whether a caBundle (PEM text, maybe several certs) trusts `ca_pem`."""
    if not bundle_pem:
        return False
    try:
        trusted = x509.load_pem_x509_certificates(bundle_pem.encode())
    except ValueError:
        return False
    wanted = x509.load_pem_x509_certificate(ca_pem)
    return any(c == wanted for c in trusted)


def pruned_ca_bundle(ca_pem: bytes, previous: str | None, *, now: datetime.datetime) -> bytes:
    """`ca_pem` first, then at most one earlier CA from `previous`: the newest one still valid (leaves
    it signed may still be served while replicas converge). Older and expired CAs are dropped, so a
    caBundle never grows with each rotation, nor keeps trusting a retired key."""
    try:
        earlier = x509.load_pem_x509_certificates(previous.encode()) if previous else []
    except ValueError:
        earlier = []
    current = x509.load_pem_x509_certificate(ca_pem)
    live = [c for c in earlier if c != current and c.not_valid_after_utc > now]
    keep = max(live, key=lambda c: c.not_valid_before_utc, default=None)
    return ca_pem + (keep.public_bytes(serialization.Encoding.PEM) if keep else b"")


def expiry_seconds(cert_pem: bytes, *, now: datetime.datetime) -> float:
    """Seconds until the certificate expires (negative once it has)."""
    return (x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc - now).total_seconds()
