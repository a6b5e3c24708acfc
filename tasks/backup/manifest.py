"""The per-set manifest: every artifact's kind, size and SHA-256, plus what verification needs.

Written twice (`manifest.json` and `manifest.json.copy`, as pgBackRest keeps backup.manifest.copy),
each carrying the SHA-256 of its own canonical content. Readers always read both: a missing or
corrupt one, or two intact ones that disagree, is a problem they report (verify-backups fails on
it) while the good one is used; it is never silently repaired.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from tradeops.files import atomic_write_text

MANIFEST = "manifest.json"
MANIFEST_COPY = "manifest.json.copy"


class ManifestError(Exception):
    """Neither the manifest nor its copy can be trusted."""


@dataclass
class ArtifactEntry:
    target: str
    kind: str                       # pg_dump | sqlite_db | csv | git_bundle | tar
    path: str                       # relative to the set folder
    sha256: str
    size: int
    offsite_key: str | None = None
    reused_from: str | None = None  # set id whose identical artifact this set points at
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Manifest:
    set_id: str
    environment: str
    kind: str
    created_at: str
    flow_run_id: str | None
    artifacts: list[ArtifactEntry]
    recovery_doc_sha256: str | None = None  # RECOVERY.md beside it (None in sets made before it was recorded)

    def artifact(self, target: str, kind: str) -> ArtifactEntry | None:
        return next((a for a in self.artifacts if a.target == target and a.kind == kind), None)

    def by_target(self) -> dict[str, list[ArtifactEntry]]:
        """Each target's artifacts (a database: its dump and CSV), in manifest order."""
        grouped: dict[str, list[ArtifactEntry]] = {}
        for entry in self.artifacts:
            grouped.setdefault(entry.target, []).append(entry)
        return grouped


def _canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def write_manifest(set_dir: Path, manifest: Manifest) -> None:
    body = asdict(manifest)
    text = json.dumps({**body, "manifest_sha256": hashlib.sha256(_canonical(body).encode()).hexdigest()},
                      indent=2, sort_keys=True)
    atomic_write_text(set_dir / MANIFEST_COPY, text)
    atomic_write_text(set_dir / MANIFEST, text)


def parse_manifest(text: str) -> Manifest:
    """Parse and check a manifest's own checksum; ManifestError when it does not hold."""
    try:
        data = json.loads(text)
        claimed = data.pop("manifest_sha256")
    except (ValueError, KeyError, AttributeError) as exc:
        raise ManifestError(f"not a tradeops manifest: {exc}") from None
    if hashlib.sha256(_canonical(data).encode()).hexdigest() != claimed:
        raise ManifestError("manifest checksum does not match its content")
    data["artifacts"] = [ArtifactEntry(**a) for a in data["artifacts"]]
    return Manifest(**data)


def read_manifest_pair(read: Callable[[str], bytes | None], where: str) -> tuple[Manifest, list[str]]:
    """The manifest and its copy, each read by `read(name)` (None when missing): the one to use,
    and every problem found (missing, corrupt, or both intact but different). ManifestError when
    neither can be trusted."""
    parsed: dict[str, Manifest] = {}
    problems = []
    for name in (MANIFEST, MANIFEST_COPY):
        data = read(name)
        if data is None:
            problems.append(f"{where}{name} is missing")
            continue
        try:
            parsed[name] = parse_manifest(data.decode())
        except (ManifestError, UnicodeDecodeError) as exc:
            problems.append(f"{where}{name}: {exc}")
    if not parsed:
        raise ManifestError("; ".join(problems))
    if len(parsed) == 2 and parsed[MANIFEST] != parsed[MANIFEST_COPY]:
        problems.append(f"{where}{MANIFEST} and {where}{MANIFEST_COPY} disagree (each intact, different content)")
    return parsed.get(MANIFEST) or parsed[MANIFEST_COPY], problems


def read_manifest(set_dir: Path) -> tuple[Manifest, list[str]]:
    """The set folder's manifest (its copy when the manifest is unusable) and the problems found."""
    def read(name: str) -> bytes | None:
        path = set_dir / name
        return path.read_bytes() if path.is_file() else None

    return read_manifest_pair(read, f"{set_dir}/")
