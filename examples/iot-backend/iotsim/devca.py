"""A development CA and a server certificate signed by it, for running the stack locally over TLS.

Not for production: the CA's key sits next to the certificates. Devices and operators trust
`ca.crt`; the broker and the registry serve `server.crt` with `server.key`. Re-running keeps
what exists and re-issues only a server certificate that no longer fits (other names, or
less than 30 days left).

    python iotsim/devca.py DIR [--name HOST ...]    # default names: localhost, 127.0.0.1, ::1, broker, registry
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1", "broker", "registry")
CA_DAYS, SERVER_DAYS, RENEW_DAYS = 3650, 397, 30


@dataclass(frozen=True)
class DevCa:
    """Where the files are: ca.crt for clients, server.crt and server.key for the servers."""

    folder: Path

    @property
    def ca_cert(self) -> Path:
        """The CA certificate clients trust."""
        return self.folder / "ca.crt"

    @property
    def ca_key(self) -> Path:
        """The CA's private key (development only)."""
        return self.folder / "ca.key"

    @property
    def server_cert(self) -> Path:
        """The server certificate (PEM)."""
        return self.folder / "server.crt"

    @property
    def server_key(self) -> Path:
        """The server certificate's private key (PEM)."""
        return self.folder / "server.key"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write a file with a mode from the start, replacing it in one rename."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _alt_names(names: list[str]) -> list[x509.GeneralName]:
    """Subject alternative names: IP addresses as such, the rest as DNS names."""
    found: list[x509.GeneralName] = []
    for name in names:
        try:
            found.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            found.append(x509.DNSName(name))
    return found


def _make_ca(ca: DevCa) -> None:
    """A new self-signed CA (P-256), written to ca.crt and ca.key (0600)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "multicloud IoT development CA")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(ca.ca_key, _key_pem(key), 0o600)
    _write(ca.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _server_fits(ca: DevCa, names: list[str]) -> bool:
    """Whether server.crt exists, was signed by this CA, names exactly `names` and has time left."""
    try:
        cert = x509.load_pem_x509_certificate(ca.server_cert.read_bytes())
        issuer = x509.load_pem_x509_certificate(ca.ca_cert.read_bytes())
        ca.server_key.stat()
    except (OSError, ValueError):
        return False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    left = cert.not_valid_after_utc - _now()
    return cert.issuer == issuer.subject and set(san) == set(_alt_names(names)) and left.days >= RENEW_DAYS


def _make_server(ca: DevCa, names: list[str]) -> None:
    """A server certificate for `names`, signed by the CA, written to server.crt and server.key (0600)."""
    ca_key = serialization.load_pem_private_key(ca.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    issuer = x509.load_pem_x509_certificate(ca.ca_cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(issuer.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(_alt_names(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(ca.server_key, _key_pem(key), 0o600)
    _write(ca.server_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def ensure(folder: Path, names: list[str] | None = None) -> DevCa:
    """Make the CA and the server certificate in `folder` unless what is there still fits; return the paths."""
    names = list(names or DEFAULT_NAMES)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca = DevCa(folder)
    if not (ca.ca_cert.exists() and ca.ca_key.exists()):
        _make_ca(ca)
    if not _server_fits(ca, names):
        _make_server(ca, names)
    return ca


def main(argv: list[str] | None = None) -> int:
    """Make (or keep) the development CA and server certificate; print where they are."""
    parser = argparse.ArgumentParser(prog="devca.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--name", action="append", help="a host name or IP the server certificate is for")
    args = parser.parse_args(argv)
    ca = ensure(args.folder, args.name)
    print(f"development CA: {ca.ca_cert}; server certificate: {ca.server_cert} (key {ca.server_key})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
