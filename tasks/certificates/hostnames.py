"""Does a certificate serve a host name? RFC 6125 matching against the subjectAltName.

A wildcard stands for exactly one whole label, and only as the leftmost one: `*.example.com`
covers `api.example.com`, not `example.com` nor `a.b.example.com`. IP addresses match IP
entries only. The subject's common name is not consulted (browsers stopped doing so).
"""

from __future__ import annotations

import ipaddress

from tasks.certificates.result import Verdict


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return None


def name_matches(pattern: str, host: str) -> bool:
    """Does one subjectAltName entry (`pattern`) cover `host`?"""
    host_ip, pattern_ip = _ip(host), _ip(pattern)
    if host_ip is not None or pattern_ip is not None:
        return host_ip is not None and host_ip == pattern_ip
    pattern_labels = pattern.lower().rstrip(".").split(".")
    host_labels = host.lower().rstrip(".").split(".")
    if len(pattern_labels) != len(host_labels) or not all(host_labels):
        return False
    first, *rest = pattern_labels
    if "*" in "".join(rest) or ("*" in first and first != "*") or (first == "*" and len(rest) < 2):
        return False  # wildcards: the whole leftmost label, above a registrable-looking domain
    return (first == "*" or first == host_labels[0]) and rest == host_labels[1:]


def uncovered(cert_names: tuple[str, ...], hosts: list[str]) -> list[str]:
    """The hosts none of the certificate's names cover."""
    return [host for host in hosts if not any(name_matches(pattern, host) for pattern in cert_names)]


def hostname_verdict(cert_names: tuple[str, ...], hosts: list[str]) -> Verdict:
    """Every host in `hosts` must be covered; no hosts configured is "not configured", not a failure."""
    if not hosts:
        return Verdict(None, "not configured")
    missing = uncovered(cert_names, hosts)
    if missing:
        return Verdict(False, f"{', '.join(missing)} not in the certificate ({', '.join(cert_names) or 'no names'})")
    return Verdict(True, f"matches {', '.join(hosts)}")
