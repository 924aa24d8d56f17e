"""certs.pki: names, usages and the signature chain, checked with cryptography's own verifier."""

import ipaddress

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from certs import pki


@pytest.fixture(scope="module")
def ca() -> pki.KeyPair:
    return pki.make_ca("test-ca", days=1)


def _server_verifier(ca: pki.KeyPair, name: x509.GeneralName):
    return PolicyBuilder().store(Store([ca.cert])).build_server_verifier(name)


def test_ca_is_a_ca(ca):
    constraints = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    assert ca.cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert ca.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "test-ca"


def test_serving_cert_verifies_for_its_sans(ca):
    leaf = pki.make_serving_cert(ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"], days=1)
    sans = leaf.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    eku = leaf.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]

    for name in (x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))):
        chain = _server_verifier(ca, name).verify(leaf.cert, [])
        assert chain[-1] == ca.cert


def test_serving_cert_fails_for_other_names_and_other_cas(ca):
    leaf = pki.make_serving_cert(ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"], days=1)
    with pytest.raises(VerificationError):
        _server_verifier(ca, x509.DNSName("example.com")).verify(leaf.cert, [])
    with pytest.raises(VerificationError):
        _server_verifier(pki.make_ca("other", days=1), x509.DNSName("localhost")).verify(leaf.cert, [])


def test_serving_cert_needs_a_name(ca):
    with pytest.raises(ValueError):
        pki.make_serving_cert(ca, dns_names=[], ip_addresses=[], days=1)


def test_client_cert_carries_user_and_groups(ca):
    leaf = pki.make_client_cert(ca, user="admin", groups=["system:masters", "devs"], days=1)
    subject = leaf.cert.subject
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == ["admin"]
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "system:masters",
        "devs",
    ]
    eku = leaf.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    # Signed by the CA: verify_directly_issued_by checks issuer name and signature.
    leaf.cert.verify_directly_issued_by(ca.cert)
    with pytest.raises(InvalidSignature):
        leaf.cert.verify_directly_issued_by(pki.make_ca("test-ca", days=1).cert)


def test_client_cert_is_not_a_server_cert(ca):
    leaf = pki.make_client_cert(ca, user="admin", groups=[], days=1)
    with pytest.raises(VerificationError):
        _server_verifier(ca, x509.DNSName("admin")).verify(leaf.cert, [])


def test_private_key_matches_certificate(ca):
    leaf = pki.make_serving_cert(ca, dns_names=["a.example"], ip_addresses=[], days=1)
    assert leaf.key.public_key() == leaf.cert.public_key()


def test_rsa_keypair_is_a_matching_2048_bit_pair():
    pair = pki.make_rsa_keypair()
    private = serialization.load_pem_private_key(pair.key_pem, password=None)
    public = serialization.load_pem_public_key(pair.public_pem)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    assert private.public_key() == public


def test_write_puts_private_key_at_0400(ca, tmp_path):
    cert_path, key_path = ca.write(tmp_path / "pki", "ca")
    assert cert_path.read_bytes() == ca.cert_pem
    assert key_path.read_bytes() == ca.key_pem
    assert key_path.stat().st_mode & 0o777 == 0o400
