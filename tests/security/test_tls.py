"""The self-managed CA: name-constrained, short-lived, pruned from the caBundle; keys on disk 0400."""

from __future__ import annotations

import datetime
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certs import pki, webhook_tls
from webhook import tls

NOW = datetime.datetime.now(datetime.timezone.utc)


def test_the_ca_may_vouch_only_for_the_services_names():
    bundle = webhook_tls.issue(service="hook", namespace="ns", extra_ips=["127.0.0.1"])
    constraints = bundle.ca.cert.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    permitted = {str(n.value) for n in constraints.value.permitted_subtrees}
    assert permitted == {"hook", "hook.ns", "hook.ns.svc", "hook.ns.svc.cluster.local", "127.0.0.1/32"}
    no_ips = webhook_tls.issue(service="hook", namespace="ns").ca.cert.extensions.get_extension_for_class(x509.NameConstraints)
    assert {str(n.value) for n in no_ips.value.excluded_subtrees} == {"0.0.0.0/0", "::/0"}


def test_lifetimes_are_short():
    bundle = webhook_tls.issue(service="hook", namespace="ns")
    assert webhook_tls.expiry_seconds(bundle.serving.cert_pem, now=NOW) <= 31 * 86400
    assert webhook_tls.expiry_seconds(bundle.ca.cert_pem, now=NOW) <= 366 * 86400


def test_the_ca_bundle_keeps_only_the_newest_earlier_ca():
    cas = [pki.make_ca(f"ca{i}", days=10).cert_pem for i in range(4)]
    bundle = webhook_tls.pruned_ca_bundle(cas[0], "".join(c.decode() for c in cas[1:]), now=NOW)
    kept = x509.load_pem_x509_certificates(bundle)
    assert len(kept) == 2 and kept[0].public_bytes(serialization.Encoding.PEM) == cas[0]
    later = NOW + datetime.timedelta(days=20)  # every earlier CA expired: none kept
    assert len(x509.load_pem_x509_certificates(webhook_tls.pruned_ca_bundle(cas[0], cas[1].decode(), now=later))) == 1


def test_key_files_are_0400_and_rewritable(tmp_path):
    pair = webhook_tls.issue(service="hook", namespace="ns").serving
    for _ in range(2):  # a rotation rewrites a read-only file
        cert, key = pair.write(tmp_path, "tls")
    assert stat.S_IMODE(key.stat().st_mode) == 0o400


def test_the_served_certificates_expiry_is_known(tmp_path):
    cert, key = webhook_tls.issue(service="hook", namespace="ns").serving.write(tmp_path, "tls")
    source = tls.FileSource(tls.server_context(), cert, key)
    assert source.expiry_seconds() is None
    source.refresh()
    assert 29 * 86400 < (source.expiry_seconds() or 0) <= 30 * 86400
