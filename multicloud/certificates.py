"""Generated TLS material (`generate: {type: tls}`): a private CA made once per app and target and a
server certificate issued by it, decided from what the target's secret store already holds.

The rules: ECDSA P-256 keys and SHA-256 signatures; the CA lives CA_DAYS (path length 0, so it can sign
no other CA), a server certificate SERVER_DAYS, never past its CA; serial numbers are 159 random bits;
IP addresses go in the certificate as IP names, everything else as DNS names. What the store holds is
kept while it still fits: a new CA only when there is none that works (missing, unreadable, or within
RENEW_DAYS of its end: devices must then trust the new one), a new server certificate when it was not
issued by that CA, does not match its key, names other names than wanted, or has less than RENEW_DAYS
left. The CA's private key goes back only to the store. `cryptography` is imported when a TLS secret is used.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from multicloud.errors import UserError

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

CA_DAYS = 3650
SERVER_DAYS = 397
"""Within what browsers accept of any certificate, and Apple's 825-day limit for private CAs."""
RENEW_DAYS = 30
BACKDATE = datetime.timedelta(minutes=5)
"""How far before now a certificate starts to count, for clocks a little behind."""
MAX_COMMON_NAME = 64


def fresh_material(
    stored: Mapping[str, str], names: Sequence[str], *, issuer: str, now: datetime.datetime | None = None
) -> dict[str, str]:
    """The parts (cert, key, ca, ca_key: PEM text) to make anew so that the material fits `names` (canonical
    host names, see multicloud.spec.certificate.host_name), given the `stored` parts; {} when what is stored
    fits. `issuer` names the CA (its common name). A UserError when there is no name to issue for."""
    from cryptography.hazmat.primitives.asymmetric import ec

    if not names:
        raise UserError("a generated TLS certificate needs a name: give generate.names (this target knows no "
                        "public name of its own yet)")
    now = now or datetime.datetime.now(datetime.UTC)
    fresh: dict[str, str] = {}
    ca = _usable_ca(stored, now)
    if ca is None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _ca_certificate(ca_key, issuer, now)
        fresh.update(ca=_pem(ca_cert), ca_key=_key_pem(ca_key))
        ca = (ca_cert, ca_key)
    if fresh or not _server_fits(stored, ca[0], names, now):
        key = ec.generate_private_key(ec.SECP256R1())
        fresh.update(cert=_pem(_server_certificate(key, ca, names, now)), key=_key_pem(key))
    return fresh


def certificate_names(cert_pem: str) -> list[str]:
    """The names (DNS names and IP addresses, in canonical form) a PEM certificate is issued for."""
    from cryptography import x509

    return _names(x509.load_pem_x509_certificate(cert_pem.encode()))


def renewal_due(cert_pem: str) -> datetime.datetime:
    """When a PEM server certificate is re-issued (RENEW_DAYS before it ends)."""
    from cryptography import x509

    return x509.load_pem_x509_certificate(cert_pem.encode()).not_valid_after_utc - datetime.timedelta(days=RENEW_DAYS)


def _usable_ca(stored: Mapping[str, str], now: datetime.datetime) -> tuple[x509.Certificate, Any] | None:
    """The stored CA certificate and key, when both are readable, belong together and have time left."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        cert = x509.load_pem_x509_certificate(stored["ca"].encode())
        key = serialization.load_pem_private_key(stored["ca_key"].encode(), password=None)
    except (KeyError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        return None
    if cert.not_valid_after_utc - now < datetime.timedelta(days=RENEW_DAYS):
        return None
    return cert, key


def _server_fits(stored: Mapping[str, str], ca: x509.Certificate, names: Sequence[str],
                 now: datetime.datetime) -> bool:
    """Whether the stored server certificate and key belong together, were issued by `ca`, name exactly
    `names` and have more than RENEW_DAYS left."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(stored["cert"].encode())
        key = serialization.load_pem_private_key(stored["key"].encode(), password=None)
        cert.verify_directly_issued_by(ca)
    except (KeyError, ValueError, TypeError, InvalidSignature):
        return False
    return (
        key.public_key() == cert.public_key()
        and set(_names(cert)) == set(names)
        and cert.not_valid_after_utc - now >= datetime.timedelta(days=RENEW_DAYS)
        and cert.not_valid_before_utc <= now
    )


def _names(cert: x509.Certificate) -> list[str]:
    """The subject alternative names of a certificate, canonical (IP addresses as ipaddress writes them)."""
    from cryptography import x509

    try:
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*alt.get_values_for_type(x509.DNSName),
            *(str(ip) for ip in alt.get_values_for_type(x509.IPAddress))]


def _ca_certificate(key: ec.EllipticCurvePrivateKey, issuer: str, now: datetime.datetime) -> x509.Certificate:
    """A self-signed CA certificate that may sign server certificates only (path length 0)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer[:MAX_COMMON_NAME])])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _server_certificate(key: ec.EllipticCurvePrivateKey, ca: tuple[x509.Certificate, Any], names: Sequence[str],
                        now: datetime.datetime) -> x509.Certificate:
    """A server certificate for `names`, issued by `ca`, ending SERVER_DAYS from now or with the CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert, ca_key = ca
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    first = names[0]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first)] if len(first) <= MAX_COMMON_NAME else [])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + datetime.timedelta(days=SERVER_DAYS), ca_cert.not_valid_after_utc))
        # an empty subject makes the names the certificate's identity: then they are critical (RFC 5280)
        .add_extension(x509.SubjectAlternativeName(alt), critical=not subject)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    """Digital signatures (ECDHE handshakes) for a server; certificate and CRL signing for a CA."""
    from cryptography import x509

    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
                         encipher_only=False, decipher_only=False)


def _pem(cert: x509.Certificate) -> str:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()
