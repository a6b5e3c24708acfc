"""The per-set manifest: every artifact's kind, size and SHA-256, plus what verification needs.

Written twice (`manifest.json` and `manifest.json.copy`, as pgBackRest keeps backup.manifest.copy),
each carrying the SHA-256 of its own canonical content, so a corrupt or missing manifest is caught
and the good copy is used.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tasks.files import atomic_write_text

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


def read_manifest(set_dir: Path) -> tuple[Manifest, list[str]]:
    """The set's manifest, falling back to the copy; also the problems found on the way."""
    problems = []
    for name in (MANIFEST, MANIFEST_COPY):
        path = set_dir / name
        try:
            return parse_manifest(path.read_text()), problems
        except FileNotFoundError:
            problems.append(f"{path} is missing")
        except ManifestError as exc:
            problems.append(f"{path}: {exc}")
    raise ManifestError("; ".join(problems))
