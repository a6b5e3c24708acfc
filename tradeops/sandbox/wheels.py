"""Wheels made offline: a small pure-Python package from its files, or an installed distribution
packed back into a wheel (its dist-info and files, RECORD recomputed).

The sandbox's wheelhouse (a `--find-links` folder) holds both, so the dependency-update flow can
install an application's requirements and its test tools into a scratch virtualenv with
`pip install --no-index`: nothing reaches a package index.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import re
import zipfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

SKIPPED_DIST_INFO = ("INSTALLER", "REQUESTED", "direct_url.json", "RECORD")


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _write_wheel(path: Path, dist_info: str, members: dict[str, bytes]) -> Path:
    tmp = path.with_name(path.name + ".part")
    records = [_record_line(name, data) for name, data in members.items()]
    records.append(f"{dist_info}/RECORD,,")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)
        archive.writestr(zipfile.ZipInfo(f"{dist_info}/RECORD", date_time=(2020, 1, 1, 0, 0, 0)),
                         "\n".join(records) + "\n")
    tmp.replace(path)
    return path


def wheel_name(name: str, version: str) -> str:
    return f"{re.sub(r'[-_.]+', '_', name)}-{version}-py3-none-any.whl"


def build_wheel(wheelhouse: Path, name: str, version: str, files: dict[str, str],
                requires: tuple[str, ...] = (), summary: str = "") -> Path:
    """A pure-Python wheel of `files` ({"pkg/__init__.py": source}) in `wheelhouse`."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    dist_info = f"{re.sub(r'[-_.]+', '_', name)}-{version}.dist-info"
    metadata = [f"Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", f"Summary: {summary or name}"]
    metadata += [f"Requires-Dist: {r}" for r in requires]
    members = {path: source.encode() for path, source in files.items()}
    members[f"{dist_info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    members[f"{dist_info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: tradeops-sandbox\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    return _write_wheel(wheelhouse / wheel_name(name, version), dist_info, members)


def repack_installed(wheelhouse: Path, names: tuple[str, ...]) -> list[Path]:
    """Each named installed distribution and every one it requires (markers evaluated here, extras
    ignored) packed back into a wheel in `wheelhouse`."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    environment = default_environment()
    pending, seen, written = list(names), set(), []
    while pending:
        name = canonicalize_name(pending.pop())
        if name in seen:
            continue
        seen.add(name)
        dist = importlib.metadata.distribution(name)
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({**environment, "extra": ""}):
                pending.append(requirement.name)
        members: dict[str, bytes] = {}
        dist_info = None
        for file in dist.files or []:
            relative = str(file).replace("\\", "/")
            if relative.startswith("..") or "__pycache__" in relative or relative.endswith(".pyc"):
                continue
            top = relative.split("/", 1)[0]
            if top.endswith(".dist-info"):
                dist_info = top
                if relative.split("/")[-1] in SKIPPED_DIST_INFO:
                    continue
            located = Path(dist.locate_file(file))
            if located.is_file():
                members[relative] = located.read_bytes()
        if dist_info is None:
            raise RuntimeError(f"{dist.metadata['Name']}: no dist-info among its files; cannot repack it")
        written.append(_write_wheel(wheelhouse / wheel_name(dist.metadata["Name"], dist.version), dist_info,
                                    members))
    return written
