"""The self-managed CA: name-constrained, short-lived, pruned from the caBundle; keys on disk 0400; rotations
that no handshake notices."""

from __future__ import annotations

import datetime
import shutil
import ssl
import stat
import threading

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
    source = tls.FileSource(cert, key)
    assert source.expiry_seconds() is None
    source.refresh()
    assert 29 * 86400 < (source.expiry_seconds() or 0) <= 30 * 86400


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> None:
    """One TLS handshake in memory (no sockets): raises ssl.SSLError if the server cannot complete it."""
    s_in, s_out, c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    ends = server.wrap_bio(s_in, s_out, server_side=True), client.wrap_bio(c_in, c_out)
    for _ in range(10):
        done = 0
        for end in ends:
            try:
                end.do_handshake()
                done += 1
            except ssl.SSLWantReadError:
                pass
        if done == 2:
            return
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    raise AssertionError("the handshake did not finish")


def test_handshakes_while_the_certificate_rotates_all_succeed(tmp_path):
    """The CI once saw "no shared cipher" during a rotation: certificates loaded into the served context
    left a moment with the new certificate and no key. Now a rotation publishes a fresh context."""
    ca = pki.make_ca("t", days=1)
    pairs = [pki.make_serving_cert(ca, dns_names=["localhost"], ip_addresses=[], days=1).write(tmp_path / str(i), "tls")
             for i in range(2)]
    live = tmp_path / "live"
    live.mkdir()
    cert, key = live / "tls.crt", live / "tls.key"
    for source_file, target in zip(pairs[0], (cert, key)):
        shutil.copyfile(source_file, target)
    source = tls.FileSource(cert, key)
    assert source.refresh()
    stop, rotations = threading.Event(), [0]

    def rotate() -> None:
        while not stop.is_set():
            for source_file, target in zip(pairs[(rotations[0] + 1) % 2], (cert, key)):  # the other pair
                shutil.copyfile(source_file, target)
            rotations[0] += source.refresh()  # a half-copied pair is rejected and the old one stays

    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    rotator = threading.Thread(target=rotate)
    rotator.start()
    try:
        for _ in range(300):
            _handshake(source.context, client)
    finally:
        stop.set()
        rotator.join()
    assert rotations[0] > 20  # the handshakes did run while certificates changed
