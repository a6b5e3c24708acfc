"""Reading TLS certificates: days to expiry and names, from PEM files or a live endpoint."""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class CertificateInfo:
    source: str
    subject: str
    dns_names: tuple[str, ...]
    not_after: datetime

    def days_left(self, now: datetime | None = None) -> float:
        now = now or datetime.now(timezone.utc)
        return (self.not_after - now).total_seconds() / 86400


def san_names(cert: x509.Certificate) -> tuple[str, ...]:
    """The DNS names and IP addresses of the subjectAltName, in certificate order."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return (*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress)))


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER encoding: what identifies one issued certificate."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _info(source: str, cert: x509.Certificate) -> CertificateInfo:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    dns = tuple(n for n in san_names(cert) if not _is_ip(n))
    return CertificateInfo(source, names[0].value if names else "", dns, cert.not_valid_after_utc)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def load_chain(data: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle (leaf first, then intermediates), or the one in DER."""
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def read_chain_file(path: Path) -> list[x509.Certificate]:
    return load_chain(Path(path).read_bytes())


def read_certificate_file(path: Path) -> CertificateInfo:
    """The first certificate in a PEM (or DER) file."""
    return _info(str(path), read_chain_file(path)[0])


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """`host:port` (or `[v6]:port`) -> (host, port)."""
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port)


def endpoint_leaf(endpoint: str, timeout: float = 5.0) -> x509.Certificate:
    """The leaf certificate a TLS endpoint presents, not validated (expiry and names are read)."""
    host, port = split_endpoint(endpoint)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as sock:
        with context.wrap_socket(sock, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der)


def read_endpoint_certificate(endpoint: str, timeout: float = 5.0) -> CertificateInfo:
    """The certificate a TLS endpoint presents (not validated here: expiry is what we read)."""
    return _info(endpoint, endpoint_leaf(endpoint, timeout))
