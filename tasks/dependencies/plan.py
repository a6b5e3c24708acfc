"""The conservative plan (runbook 001 "Dependency Management": patch updates only): each pin to
its newest patch release (same major.minor); past that only to fix a known vulnerability, and
only when `allow_security_updates` is set, to the lowest release that fixes it."""

from __future__ import annotations

from dataclasses import dataclass, field

from packaging.version import Version

from tasks.dependencies.scan import Advisory, Pin, Vulnerability, vulnerabilities_of

PATCH = "patch"
SECURITY = "security"


@dataclass(frozen=True)
class PackageStatus:
    """One pin: what it is, what the index offers, what is known against it, and what the plan does."""

    name: str
    current: str
    latest: str | None  # None: the index does not list it
    newest_patch: str | None
    vulnerabilities: list[Vulnerability] = field(default_factory=list)  # of the current version
    planned: str | None = None
    kind: str | None = None  # patch, security
    remaining: list[Vulnerability] = field(default_factory=list)  # still known after the plan
    note: str = ""

    @property
    def outdated(self) -> bool:
        return self.latest is not None and Version(self.latest) > Version(self.current)


def _same_minor(a: Version, b: Version) -> bool:
    return (a.release + (0, 0))[:2] == (b.release + (0, 0))[:2]


def plan_package(pin: Pin, offered: list[Version] | None, advisories: list[Advisory],
                 allow_security_updates: bool) -> PackageStatus:
    current = Version(pin.version)
    known = vulnerabilities_of(pin.name, pin.version, advisories)
    if not offered:
        return PackageStatus(pin.name, pin.version, None, None, known, remaining=known,
                             note="not in the recorded index: left as it is")
    newer = [v for v in offered if v > current]
    patches = [v for v in newer if _same_minor(v, current)]
    newest_patch = max(patches) if patches else None
    latest = str(max(offered))
    planned, kind, note = newest_patch, PATCH if newest_patch else None, ""
    if known and (newest_patch is None or vulnerabilities_of(pin.name, str(newest_patch), advisories)):
        fixing = [v for v in newer if not vulnerabilities_of(pin.name, str(v), advisories)]
        if not fixing:
            note = "no release fixes its known vulnerabilities"
        elif allow_security_updates:
            planned, kind = min(fixing), SECURITY
            note = f"past the patch level to fix {', '.join(v.id for v in known)}"
        else:
            note = (f"fixed in {min(fixing)}, past the patch level: allow_security_updates is off")
    target = str(planned) if planned else pin.version
    return PackageStatus(pin.name, pin.version, latest, str(newest_patch) if newest_patch else None, known,
                         str(planned) if planned else None, kind,
                         vulnerabilities_of(pin.name, target, advisories), note)


def build_plan(pins: list[Pin], index: dict[str, list[Version]], advisories: list[Advisory],
               allow_security_updates: bool) -> list[PackageStatus]:
    return [plan_package(pin, index.get(pin.key), advisories, allow_security_updates) for pin in pins]
