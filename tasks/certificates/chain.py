"""Is a certificate's chain trusted? Files: cryptography's WebPKI verifier against the trusted
roots; endpoints: a verifying TLS handshake, as a client would do it.

Trusted roots are the set's `ca_file`, else the system bundle. An expired leaf is verified at
its last valid second, so the report still says whether the chain itself is sound.
"""

from __future__ import annotations

import re
import socket
import ssl
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import DNSName, IPAddress, PolicyBuilder, Store, VerificationError

from tasks.certificates.reading import split_endpoint
from tasks.certificates.result import Verdict

PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


@dataclass(frozen=True)
class TrustedRoots:
    source: str  # the CA file, or the system bundle's path
    certificates: tuple[x509.Certificate, ...] = ()
    error: str | None = None  # why there are none


def trusted_roots(ca_file: str | None) -> TrustedRoots:
    """The roots in `ca_file`, else in the system bundle; a bundle entry that does not parse is
    skipped (one odd root must not make every chain "untrusted")."""
    path = ca_file or ssl.get_default_verify_paths().cafile
    if not path:
        return TrustedRoots("system", error="the system has no CA bundle: set ca_file")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return TrustedRoots(path, error=f"cannot read trusted roots {path}: {exc.strerror or exc}")
    roots = []
    with warnings.catch_warnings():  # some system roots have odd serial numbers: not our finding
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        for block in PEM_BLOCK.findall(data):
            try:
                roots.append(x509.load_pem_x509_certificate(block))
            except ValueError:
                continue
    if not roots:
        return TrustedRoots(path, error=f"no certificate in trusted roots {path}")
    return TrustedRoots(path, tuple(roots))


def _subject(leaf: x509.Certificate) -> DNSName | IPAddress | None:
    """A name the leaf carries, to build the server verifier for (the host-name check is separate)."""
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    dns, ips = san.get_values_for_type(x509.DNSName), san.get_values_for_type(x509.IPAddress)
    if dns:
        first = dns[0]  # a wildcard entry: any one label under it will do
        return DNSName("host" + first[1:] if first.startswith("*.") else first)
    return IPAddress(ips[0]) if ips else None


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def verify_chain(chain: list[x509.Certificate], roots: TrustedRoots, now: datetime) -> Verdict:
    """Verify leaf + intermediates up to a trusted root, at `now` or, for an expired leaf, at
    its last valid second."""
    if roots.error:
        return Verdict(False, roots.error)
    leaf, intermediates = chain[0], chain[1:]
    subject = _subject(leaf)
    if subject is None:
        return Verdict(False, "the certificate has no subjectAltName")
    at = min(now, leaf.not_valid_after_utc)
    try:
        verifier = PolicyBuilder().store(Store(list(roots.certificates))).time(at).build_server_verifier(subject)
        path = verifier.verify(leaf, intermediates)
    except (VerificationError, ValueError) as exc:
        return Verdict(False, f"{exc} (trusted roots: {roots.source})")
    when = " (at its expiry)" if at < now else ""
    return Verdict(True, f"valid{when}, root {_common_name(path[-1])}")


def verify_endpoint_chain(endpoint: str, ca_file: str | None, timeout: float = 5.0) -> Verdict:
    """A handshake that verifies the chain (not the host name: that is checked on its own)."""
    host, port = split_endpoint(endpoint)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
        else:
            context.load_default_certs()
    except (OSError, ssl.SSLError) as exc:
        return Verdict(False, f"cannot load trusted roots {ca_file}: {exc}")
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            with context.wrap_socket(sock, server_hostname=host):
                pass
    except ssl.SSLCertVerificationError as exc:
        return Verdict(False, exc.verify_message or str(exc))
    except (OSError, ssl.SSLError) as exc:
        return Verdict(False, f"verifying handshake with {endpoint} failed: {exc}")
    return Verdict(True, "valid" + (f", against {Path(ca_file).name}" if ca_file else ""))
