"""Throwaway certificate authorities and server certificates, so emulators and their fronts speak HTTPS."""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TestCertificate:
    """PEM files of a generated CA (the bundle clients trust) and the server's key pair."""

    ca_bundle: str
    cert_file: str
    key_file: str


class TestAuthority:
    """A throwaway CA that issues server certificates into one directory; clients trust `ca_bundle`."""

    def __init__(self, directory: str, name: str = "multicloud emulator test CA") -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.UTC)
        self.start, self.end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=30)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.start)
            .not_valid_after(self.end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ca_bundle = str(self.directory / "ca.pem")
        Path(self.ca_bundle).write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, hosts: list[str], stem: str = "server") -> TestCertificate:
        """Write a server certificate for `hosts` (names, wildcards or IPs) and its key as
        STEM.pem and STEM.key; a failure leaves at most partial PEM files, which nothing reads."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        for host in dict.fromkeys([*hosts, "localhost", "127.0.0.1"]):
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0] if hosts else "localhost")]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.start)
            .not_valid_after(self.end)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert_path, key_path = self.directory / f"{stem}.pem", self.directory / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
        return TestCertificate(self.ca_bundle, str(cert_path), str(key_path))


def generate(directory: str, hosts: list[str]) -> TestCertificate:
    """Write a CA and a server certificate valid for `hosts` (names or IPs) into directory;
    a failure leaves at most partial PEM files there, which nothing else reads. Needs `cryptography`."""
    return TestAuthority(directory).issue(hosts)


class WrappedServer(ThreadingHTTPServer):
    """A threaded HTTP server whose listening socket `wrap` may turn into TLS (handshakes then happen in
    the handler threads); quiet about clients that hang up mid-request and handshakes that fail."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: Any, wrap: Callable[[Any], Any] | None = None) -> None:
        super().__init__(address, handler)
        if wrap is not None:
            self.socket = wrap(self.socket)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore the client's failure."""
