"""TLS certificates at known distances from expiry, for certificate-rotation flows.

Self-signed EC P-256 (fast to generate), PEM, with subjectAltName DNS names. Keys are
random (not seed-determined); validity dates derive from ``now`` so days-to-expiry
are exact. Private keys are written with mode 0600 from the start.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# file name -> (days to expiry at creation, DNS names it serves)
CERTIFICATES: dict[str, tuple[int, tuple[str, ...]]] = {
    "expired.pem": (-10, ("legacy-api.tradeops.local",)),
    "expiring-5d.pem": (5, ("trading.tradeops.local", "orders.tradeops.local")),
    "expiring-25d.pem": (25, ("risk.tradeops.local",)),
    "valid-1y.pem": (365, ("api.tradeops.local", "www.tradeops.local")),
}
LIFETIME_DAYS = 398  # the usual maximum for public TLS certificates


def _write_private(path: Path, data: bytes) -> None:
    """Create (or truncate) ``path`` readable by the owner only, then write ``data``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)  # in case the file already existed with wider permissions


def _certificate(key: ec.EllipticCurvePrivateKey, dns_names: tuple[str, ...], not_after: datetime):
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tradeops sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0]),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - timedelta(days=LIFETIME_DAYS))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def create_certificates(certs_dir: Path, now: datetime) -> dict[str, int]:
    """Write ``<name>.pem`` and ``<name>.key`` per certificate; return name -> days to expiry."""
    certs_dir.mkdir(parents=True, exist_ok=True)
    base = now.replace(microsecond=0)  # X.509 times have one-second resolution
    out = {}
    for file_name, (days, dns_names) in CERTIFICATES.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(key, dns_names, base + timedelta(days=days))
        (certs_dir / file_name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write_private(certs_dir / (file_name.removesuffix(".pem") + ".key"), key_pem)
        out[file_name] = days
    return out
