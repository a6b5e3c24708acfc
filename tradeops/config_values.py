"""Meaning-level checks of single configuration values: URLs by scheme, time windows, host:port.

Each check returns the value (or what it parses to) or raises ValueError saying what is wrong and
what is expected. Messages show URLs with their password replaced by `***` (`redacted`): a DSN
often holds one, and these messages go to terminals and run logs.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import time
from urllib.parse import SplitResult, urlsplit, urlunsplit

from annotated_types import Interval

from psycopg2 import ProgrammingError
from psycopg2.extensions import parse_dsn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")
# S3 bucket naming rules (AWS "Bucket naming rules", general purpose buckets)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_QUERY_SECRET = re.compile(r"((?:^|&)(?:ssl)?password=)[^&]*", re.IGNORECASE)

POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg2")


def redacted(url: str) -> str:
    """`url` with the password of its user part and any `password=` query value shown as ***."""
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:
        return "<a URL that does not parse>"
    query = _QUERY_SECRET.sub(r"\1***", parts.query)
    if not has_password and query == parts.query:
        return url
    if has_password:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{userinfo.partition(':')[0]}:***@{hostport}")
    return urlunsplit(parts._replace(query=query))


def _split(value: str, schemes: tuple[str, ...]) -> SplitResult:
    if not value.strip():
        raise ValueError("is empty: give a URL")
    if any(c.isspace() for c in value):
        raise ValueError(f"{redacted(value)!r} contains white space, which no URL may hold")
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ValueError(f"{redacted(value)!r} is not a URL: {exc}") from None
    if parts.scheme not in schemes:
        raise ValueError(f"{redacted(value)!r} is not a valid URL here: the scheme must be one of {', '.join(schemes)}")
    return parts


def valid_host(host: str) -> bool:
    """A DNS name or an IP address (IPv6 without brackets)."""
    if _HOSTNAME.match(host):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _host_and_port(value: str, parts: SplitResult) -> None:
    if not parts.hostname:
        raise ValueError(f"{redacted(value)!r} has no host")
    if not valid_host(parts.hostname):
        raise ValueError(f"{redacted(value)!r}: {parts.hostname!r} is not a valid host name or IP address")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"{redacted(value)!r}: the port must be a number from 1 to 65535")


def http_url(value: str) -> str:
    """An http:// or https:// URL with a valid host (Pushgateway, S3 endpoint, webhook, Alertmanager)."""
    parts = _split(value, ("http", "https"))
    _host_and_port(value, parts)
    return value


def offsite_url(value: str) -> str:
    """`file:///absolute/path` (this machine: no host part) or `s3://bucket/prefix`."""
    parts = _split(value, ("file", "s3"))
    if parts.scheme == "file":
        if parts.netloc:
            raise ValueError(f"{value!r} names a host ({parts.netloc!r}); a file URL is this machine's "
                             "folder: file:///absolute/path")
        if not parts.path.startswith("/") or parts.path == "/":
            raise ValueError(f"{value!r} must be an absolute file:///path below /")
        if parts.query or parts.fragment:
            raise ValueError(f"{value!r}: a file URL takes no ?query or #fragment")
        return value
    if not parts.netloc:
        raise ValueError(f"{value!r} has no bucket: use s3://bucket/prefix")
    if not _BUCKET.match(parts.netloc) or ".." in parts.netloc:
        raise ValueError(f"{value!r}: {parts.netloc!r} is not a valid S3 bucket name (3-63 lowercase letters, "
                         "digits, dots and hyphens, starting and ending with a letter or digit)")
    if parts.query or parts.fragment:
        raise ValueError(f"{value!r}: an s3 URL takes no ?query or #fragment")
    return value


def database_url(value: str, schemes: tuple[str, ...], allow_query: bool = True, sqlalchemy: bool = False) -> str:
    """A PostgreSQL URL libpq reads (hosts, ports 1-65535, a database name; with `sqlalchemy`,
    one SQLAlchemy reads too: a single host), or `sqlite:///path` naming a file."""
    parts = _split(value, schemes)
    if parts.scheme == "sqlite":
        if parts.netloc:
            raise ValueError(f"{redacted(value)!r} names a host ({parts.netloc!r}); SQLite is a file: "
                             "sqlite:///relative.db or sqlite:////absolute/path.db")
        if parts.path in ("", "/"):
            raise ValueError(f"{redacted(value)!r} names no file: sqlite:///relative.db or sqlite:////absolute/path.db")
        if (parts.query and not allow_query) or parts.fragment:
            raise ValueError(f"{redacted(value)!r}: give the SQLite file's path only, without ?query or #fragment")
        return value
    libpq = "postgresql://" + value.partition("://")[2] if "://" in value else value
    try:
        fields = parse_dsn(libpq)
    except ProgrammingError as exc:
        raise ValueError(f"{redacted(value)!r} is not a PostgreSQL URL libpq can read: {_reason(exc, value)}") from None
    if sqlalchemy:
        try:
            make_url(value)
        except (ArgumentError, ValueError) as exc:
            raise ValueError(f"{redacted(value)!r} is not a URL SQLAlchemy can read (it opens the ops store): "
                             f"{_reason(exc, value)}") from None
    for host in filter(None, fields.get("host", "").split(",")):
        if not (host.startswith("/") or valid_host(host)):
            raise ValueError(f"{redacted(value)!r}: {host!r} is not a valid host name, IP address or socket folder")
    for port in filter(None, fields.get("port", "").split(",")):
        if not (port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError(f"{redacted(value)!r}: the port must be a number from 1 to 65535, not {port!r}")
    if not fields.get("dbname"):
        raise ValueError(f"{redacted(value)!r} names no database: postgresql://user@host:5432/database")
    return value


def _reason(exc: Exception, value: str) -> str:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return reason.replace(value, redacted(value))


def clock_window(value: str) -> tuple[time, time]:
    """`"HH:MM-HH:MM"` (UTC, 00:00-23:59; the end may be earlier than the start: across midnight)."""
    start_text, dash, end_text = value.partition("-")
    start_text, end_text = start_text.strip(), end_text.strip()
    if not dash or not _CLOCK.match(start_text) or not _CLOCK.match(end_text):
        raise ValueError(f"{value!r} is not a window HH:MM-HH:MM with times from 00:00 to 23:59")
    start, end = time.fromisoformat(start_text), time.fromisoformat(end_text)
    if start == end:
        raise ValueError(f"{value!r} is empty: the start equals the end")
    return start, end


def host_port(value: str) -> tuple[str, int]:
    """`host:port` or `[ipv6]:port`, the port 1-65535."""
    host, colon, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or not valid_host(host) or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not host:port (a host name or IP address, a port from 1 to 65535)")
    return host, int(port)


def _number(value: float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:g}"
    return f"{int(value):,}"


def interval_text(bounds: Interval) -> str:
    """`0 to 100`, `above 0, at most 600`, `above 0, below 1`: how the README and errors say it."""
    if bounds.ge is not None and bounds.le is not None:
        return f"{_number(bounds.ge)} to {_number(bounds.le)}"
    words = [f"above {_number(bounds.gt)}" if bounds.gt is not None else "",
             f"at least {_number(bounds.ge)}" if bounds.ge is not None else "",
             f"below {_number(bounds.lt)}" if bounds.lt is not None else "",
             f"at most {_number(bounds.le)}" if bounds.le is not None else ""]
    return ", ".join(filter(None, words)) or "any"


def within(bounds: Interval, value: float) -> bool:
    return ((bounds.gt is None or value > bounds.gt) and (bounds.ge is None or value >= bounds.ge)
            and (bounds.lt is None or value < bounds.lt) and (bounds.le is None or value <= bounds.le))
