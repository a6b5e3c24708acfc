"""TLS certificates at known distances from expiry, for certificate-rotation flows.

Issued by a sandbox CA (``certs/ca/sandbox-ca.pem``, in a subfolder so the ``certs/*.pem``
glob finds only the server certificates), so a chain check against that CA passes. EC P-256
(fast to generate), PEM, with subjectAltName DNS names and the extensions the WebPKI profile
asks for. Keys are random (not seed-determined); validity dates derive from ``now`` so
days-to-expiry are exact. Private keys are written with mode 0600 from the start.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# file name -> (days to expiry at creation, DNS names it serves)
CERTIFICATES: dict[str, tuple[int, tuple[str, ...]]] = {
    "expired.pem": (-10, ("legacy-api.tradeops.local",)),
    "expiring-5d.pem": (5, ("trading.tradeops.local", "orders.tradeops.local")),
    "expiring-25d.pem": (25, ("risk.tradeops.local",)),
    "valid-1y.pem": (365, ("api.tradeops.local", "www.tradeops.local")),
}
LIFETIME_DAYS = 398  # the usual maximum for public TLS certificates
CA_DIR = "ca"
CA_CERT_FILE = "sandbox-ca.pem"
CA_KEY_FILE = "sandbox-ca.key"
CA_LIFETIME_DAYS = 3650


def _write_private(path: Path, data: bytes) -> None:
    """Create (or truncate) ``path`` readable by the owner only, then write ``data``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)  # in case the file already existed with wider permissions


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted (the file mode protects it)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tradeops sandbox"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def create_ca(key: ec.EllipticCurvePrivateKey, not_before: datetime) -> x509.Certificate:
    """A root CA the WebPKI verifier accepts: CA basic constraints and key usage, both critical."""
    name = _name("tradeops sandbox CA")
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=CA_LIFETIME_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def issue_certificate(ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
                      key: ec.EllipticCurvePrivateKey, dns_names: tuple[str, ...], not_after: datetime,
                      lifetime_days: int = LIFETIME_DAYS) -> x509.Certificate:
    """A server certificate for ``dns_names`` signed by the CA, valid until ``not_after``."""
    return (
        x509.CertificateBuilder()
        .subject_name(_name(dns_names[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - timedelta(days=lifetime_days))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def create_certificates(certs_dir: Path, now: datetime) -> dict[str, int]:
    """Write the CA to ``ca/``, then ``<name>.pem`` and ``<name>.key`` per certificate;
    return name -> days to expiry."""
    certs_dir.mkdir(parents=True, exist_ok=True)
    base = now.replace(microsecond=0)  # X.509 times have one-second resolution
    ca_dir = certs_dir / CA_DIR
    ca_dir.mkdir(exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    # the CA predates every certificate it issues (the expired one's lifetime included)
    ca_cert = create_ca(ca_key, base - timedelta(days=LIFETIME_DAYS + 30))
    (ca_dir / CA_CERT_FILE).write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(ca_dir / CA_KEY_FILE, private_key_pem(ca_key))
    out = {}
    for file_name, (days, dns_names) in CERTIFICATES.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = issue_certificate(ca_cert, ca_key, key, dns_names, base + timedelta(days=days))
        (certs_dir / file_name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_private(certs_dir / (file_name.removesuffix(".pem") + ".key"), private_key_pem(key))
        out[file_name] = days
    return out
