"""What an application's pins are, what the index offers, and which pins are known vulnerable.

The vulnerability scan follows pip-audit's semantics (a pinned version is vulnerable when an
advisory's affected ranges or versions include it; the fix versions are the ranges' `fixed`
events) but reads OSV records from a file instead of asking PyPI's or OSV's service: pip-audit is
not a tradeops dependency and has no offline advisory source, so the records are parsed here.
The index's versions come from a recorded file too. Nothing reaches the internet.

A file that cannot be read or parsed raises ScanFailed naming the file (and record): the flow's
"scan failed" outcome, distinct from "vulnerabilities found".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version


class ScanFailed(Exception):
    """A requirements, index or advisories file that cannot be read: names the file and what is wrong."""


@dataclass(frozen=True)
class Pin:
    name: str  # as written
    version: str
    line: int

    @property
    def key(self) -> str:
        return canonicalize_name(self.name)


@dataclass(frozen=True)
class Requirements:
    pins: list[Pin]
    unpinned: list[str]  # lines that are requirements but not name==version: left alone


@dataclass(frozen=True)
class Vulnerability:
    id: str
    package: str
    version: str
    fix_versions: tuple[str, ...]
    summary: str
    severity: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Advisory:
    id: str
    package: str  # canonical name
    ranges: tuple[tuple[tuple[str, str], ...], ...]  # each range's events: ("introduced"|"fixed"|"last_affected", v)
    versions: frozenset[str]
    summary: str
    severity: str
    aliases: tuple[str, ...] = field(default=())

    def affects(self, version: Version) -> bool:
        if str(version) in self.versions:
            return True
        return any(_in_range(events, version) for events in self.ranges)

    def fix_versions(self) -> tuple[str, ...]:
        return tuple(sorted({v for events in self.ranges for kind, v in events if kind == "fixed"}, key=Version))


def _in_range(events: tuple[tuple[str, str], ...], version: Version) -> bool:
    """OSV's evaluation of one ECOSYSTEM range: affected from an `introduced` until the next
    `fixed` (excluded) or `last_affected` (included), events in version order."""
    ordered = sorted(events, key=lambda e: (Version("0") if e[1] == "0" else Version(e[1]), e[0] != "introduced"))
    affected = False
    for kind, value in ordered:
        bound = Version("0") if value == "0" else Version(value)
        if kind == "introduced" and version >= bound:
            affected = True
        elif kind == "fixed" and version >= bound:
            affected = False
        elif kind == "last_affected" and version > bound:
            affected = False
    return affected


def read_requirements(path: Path) -> Requirements:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ScanFailed(f"{path}: cannot read the requirements: {exc}") from None
    return parse_requirements(text, str(path))


def parse_requirements(text: str, source: str) -> Requirements:
    """The `name==version` pins of a requirements file's text; other requirements are listed as
    unpinned (left alone); a line that is not a requirement fails the scan naming `source:line`."""
    pins, unpinned = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        body = raw.split("#", 1)[0].strip()
        if not body or body.startswith("-"):
            continue
        try:
            requirement = Requirement(body)
        except InvalidRequirement as exc:
            raise ScanFailed(f"{source}:{number}: not a requirement: {body!r} ({exc})") from None
        specs = list(requirement.specifier)
        if len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version:
            pins.append(Pin(requirement.name, specs[0].version, number))
        else:
            unpinned.append(body)
    return Requirements(pins, unpinned)


def write_requirements(text: str, updates: dict[str, str]) -> str:
    """`text` with each updated pin's version replaced, every other line (comments too) kept."""
    out = []
    for raw in text.splitlines(keepends=True):
        body = raw.split("#", 1)[0].strip()
        try:
            requirement = Requirement(body) if body and not body.startswith("-") else None
        except InvalidRequirement:
            requirement = None
        key = canonicalize_name(requirement.name) if requirement else None
        if key in updates:
            comment = raw[len(raw.split("#", 1)[0]):].rstrip("\n") if "#" in raw else ""
            out.append(f"{requirement.name}=={updates[key]}{'  ' + comment.strip() if comment else ''}\n")
        else:
            out.append(raw)
    return "".join(out)


def read_index_versions(path: Path) -> dict[str, list[Version]]:
    """{canonical name: its released versions} from the recorded index file
    `{"packages": {"name": ["1.0.0", ...]}}`; pre-releases and yanked versions are not offered."""
    try:
        data = json.loads(path.read_text())
        packages = data["packages"]
        if not isinstance(packages, dict):
            raise TypeError("'packages' is not an object")
        out = {}
        for name, versions in packages.items():
            if not isinstance(versions, list):
                raise TypeError(f"packages.{name} is not a list of versions")
            parsed = [Version(str(v)) for v in versions]
            out[canonicalize_name(name)] = sorted(v for v in parsed if not v.is_prerelease)
        return out
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, InvalidVersion) as exc:
        raise ScanFailed(f"{path}: not a recorded index versions file: {type(exc).__name__}: {exc}") from None


def read_advisories(path: Path) -> list[Advisory]:
    """OSV records: a JSON array, or an object with `vulns` (as OSV's query API answers). Records
    of other ecosystems are ignored; a malformed PyPI record fails the scan, naming it."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ScanFailed(f"{path}: advisories are not readable JSON: {exc}") from None
    records = data.get("vulns") if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise ScanFailed(f"{path}: expected a JSON array of OSV records (or an object with 'vulns')")
    advisories = []
    for index, record in enumerate(records):
        where = f"{path}: record {index}" + (f" ({record.get('id')})" if isinstance(record, dict) else "")
        try:
            advisories += parse_record(record)
        except (KeyError, TypeError, ValueError, AttributeError, InvalidVersion) as exc:
            raise ScanFailed(f"{where}: not an OSV record: {type(exc).__name__}: {exc}") from None
    return advisories


def parse_record(record: dict) -> list[Advisory]:
    advisory_id = str(record["id"])
    severity = str((record.get("database_specific") or {}).get("severity") or "unknown").lower()
    found = []
    for affected in record["affected"]:
        package = affected["package"]
        if package.get("ecosystem") != "PyPI":
            continue
        ranges = []
        for item in affected.get("ranges", []):
            if item["type"] not in ("ECOSYSTEM", "SEMVER"):
                continue
            events = tuple((kind, str(value)) for event in item["events"] for kind, value in event.items()
                           if kind in ("introduced", "fixed", "last_affected"))
            for _, value in events:
                if value != "0":
                    Version(value)
            ranges.append(events)
        found.append(Advisory(advisory_id, canonicalize_name(package["name"]), tuple(ranges),
                              frozenset(str(v) for v in affected.get("versions", [])),
                              str(record.get("summary") or record.get("details", "")[:200]), severity,
                              tuple(record.get("aliases") or ())))
    return found


def vulnerabilities_of(name: str, version: str, advisories: list[Advisory]) -> list[Vulnerability]:
    parsed, key = Version(version), canonicalize_name(name)
    return [Vulnerability(a.id, name, version, a.fix_versions(), a.summary, a.severity, a.aliases)
            for a in advisories if a.package == key and a.affects(parsed)]
