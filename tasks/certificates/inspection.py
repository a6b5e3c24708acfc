"""Inspect a certificate file or TLS endpoint: days to expiry, host names, chain.

A file or endpoint that cannot be read is a failed result that names it and the error, never
an exception: one broken certificate must not hide the state of the others.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

from blocks.certificates import CertificateSet
from tasks.certificates.chain import TrustedRoots, trusted_roots, verify_chain, verify_endpoint_chain
from tasks.certificates.hostnames import hostname_verdict
from tasks.certificates.reading import endpoint_leaf, fingerprint, read_chain_file, san_names, split_endpoint
from tasks.certificates.result import CertificateCheck

ENDPOINT_TIMEOUT_SECONDS = 5.0


def configured_hosts(certs: CertificateSet, source: str) -> list[str]:
    """The host names a file (by name or full path) or an endpoint must serve."""
    return certs.hostnames.get(source) or certs.hostnames.get(Path(source).name) or []


def inspect_file(certs: CertificateSet, path: Path, roots: TrustedRoots, now: datetime) -> CertificateCheck:
    base = CertificateCheck(certs.target, str(path), "file", Path(path).name)
    try:
        chain = read_chain_file(path)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return replace(base, error=f"cannot be read ({path}): {reason}")
    leaf = chain[0]
    names = san_names(leaf)
    return replace(base, fingerprint=fingerprint(leaf), names=names, not_after=leaf.not_valid_after_utc,
                   days_left=_days(leaf.not_valid_after_utc, now),
                   hostname=hostname_verdict(names, configured_hosts(certs, str(path))),
                   chain=verify_chain(chain, roots, now))


def inspect_endpoint(certs: CertificateSet, endpoint: str, now: datetime,
                     timeout: float = ENDPOINT_TIMEOUT_SECONDS) -> CertificateCheck:
    """One handshake to read the leaf, one that verifies the chain; the host name is the
    endpoint's own host (plus any names configured for it)."""
    base = CertificateCheck(certs.target, endpoint, "endpoint", endpoint)
    try:
        leaf = endpoint_leaf(endpoint, timeout)
    except (OSError, ValueError) as exc:
        return replace(base, error=f"cannot be reached over TLS: {exc}")
    names = san_names(leaf)
    host, _ = split_endpoint(endpoint)
    hosts = list(dict.fromkeys([host, *configured_hosts(certs, endpoint)]))
    return replace(base, fingerprint=fingerprint(leaf), names=names, not_after=leaf.not_valid_after_utc,
                   days_left=_days(leaf.not_valid_after_utc, now), hostname=hostname_verdict(names, hosts),
                   chain=verify_endpoint_chain(endpoint, certs.ca_file, timeout))


def inspect_certificate_set(certs: CertificateSet, now: datetime) -> list[CertificateCheck]:
    """Every file and endpoint of one certificate set."""
    roots = trusted_roots(certs.ca_file)
    checks = [inspect_file(certs, path, roots, now) for path in certs.certificate_files()]
    return checks + [inspect_endpoint(certs, endpoint, now) for endpoint in certs.endpoints]


def reinspect(certs: CertificateSet, check: CertificateCheck, now: datetime) -> CertificateCheck:
    """The same file inspected again (after a renewal), keeping what was done to it."""
    fresh = inspect_file(certs, Path(check.source), trusted_roots(certs.ca_file), now)
    return replace(fresh, action=check.action, action_failed=check.action_failed)


def _days(not_after: datetime, now: datetime) -> float:
    return (not_after - now).total_seconds() / 86400

