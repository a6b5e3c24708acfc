"""Reading TLS certificates: days to expiry and names, from PEM files or a live endpoint."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography import x509
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


def _info(source: str, cert: x509.Certificate) -> CertificateInfo:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns = ()
    return CertificateInfo(source, names[0].value if names else "", dns, cert.not_valid_after_utc)


def read_certificate_file(path: Path) -> CertificateInfo:
    """The first certificate in a PEM (or DER) file."""
    data = Path(path).read_bytes()
    cert = x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
    return _info(str(path), cert)


def read_endpoint_certificate(endpoint: str, timeout: float = 5.0) -> CertificateInfo:
    """The certificate a TLS endpoint presents (not validated here: expiry is what we read)."""
    host, _, port = endpoint.rpartition(":")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        with context.wrap_socket(sock, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    return _info(endpoint, x509.load_der_x509_certificate(der))
