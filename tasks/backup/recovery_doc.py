"""RECOVERY.md: written into every backup set, with the exact commands to restore that set by hand.

The person reading it may have lost the site, tradeops and its ops store: everything it needs
(where the files are, their checksums, the commands, what a good restore looks like) is in it.
"""

from __future__ import annotations

from pathlib import Path

from tasks.backup.encryption import SUFFIX
from tasks.backup.kinds import kind_of
from tasks.backup.manifest import Manifest
from tradeops.files import atomic_write_text

RECOVERY_DOC = "RECOVERY.md"


def recovery_markdown(manifest: Manifest, set_dir: Path, offsite_url: str | None, endpoint_url: str | None,
                      key_block: str | None) -> str:
    sealed = [a for a in manifest.artifacts if a.path.endswith(SUFFIX)]
    sections = [
        f"# Recovering backup set {manifest.set_id}",
        f"Environment `{manifest.environment}`, {manifest.kind} set created {manifest.created_at} by flow run "
        f"`{manifest.flow_run_id}`; {len(manifest.artifacts)} artifact(s). Run every command from the set folder.",
        "## 1. Get the set\n\n" + _fetch(manifest, set_dir, offsite_url, endpoint_url),
        "## 2. Check every file\n\n```bash\nsha256sum -c <<'SUMS'\n"
        + "".join(f"{a.sha256}  {a.path}\n" for a in manifest.artifacts) + "SUMS\n```\n\n"
        "Any line that does not say `OK` is a damaged file: take it from the other copy (local or "
        "offsite) or from an earlier set.",
    ]
    if sealed:
        sections.append(
            "## 3. Decrypt\n\nThe artifacts are sealed with AES-256-GCM; the key is the Prefect Secret block "
            f"`{key_block}` (64 hex digits). With the key in `key.hex`:\n\n```bash\n"
            + "".join(f"python -c \"from pathlib import Path; from tasks.backup.encryption import decrypt_file, "
                      f"parse_key; decrypt_file(Path('{a.path}'), Path('{a.path.removesuffix(SUFFIX)}'), "
                      "parse_key(open('key.hex').read()))\"\n" for a in sealed)
            + "```")
    sections.append(f"## {4 if sealed else 3}. Restore\n\n" + "\n\n".join(_restore(a) for a in manifest.artifacts))
    sections.append(
        "## With tradeops\n\n```bash\n"
        f"tradeops run restore --set environment={manifest.environment} --set set_id={manifest.set_id}\n"
        f"tradeops run dr-drill --set environment={manifest.environment}   # prove the newest verified set\n```")
    return "\n\n".join(sections) + "\n"


def _fetch(manifest: Manifest, set_dir: Path, offsite_url: str | None, endpoint_url: str | None) -> str:
    lines = [f"Local copy: `{set_dir}`."]
    if offsite_url:
        endpoint = f" --endpoint-url {endpoint_url}" if endpoint_url else ""
        base = offsite_url.rstrip("/")
        if base.startswith("file://"):
            copy = [f"cp {base.removeprefix('file://')}/{a.offsite_key} {a.path}" for a in manifest.artifacts
                    if a.offsite_key]
        else:
            copy = [f"aws s3 cp{endpoint} {base}/{a.offsite_key} {a.path}" for a in manifest.artifacts
                    if a.offsite_key]
        lines.append("Offsite copy (an artifact reused from an earlier set lives under that set's key):\n\n"
                     "```bash\n" + "mkdir -p db git files audit\n" + "\n".join(copy) + "\n```")
    return "\n\n".join(lines)


def _restore(artifact) -> str:
    path = artifact.path.removesuffix(SUFFIX)
    name = artifact.target.split(":", 1)[-1]
    head = f"### {artifact.target} ({artifact.kind})\n\n```bash\n"
    return head + kind_of(artifact).recovery_steps(artifact, path, name)


def write_recovery_doc(staging: Path, final: Path, manifest: Manifest, offsite_url: str | None,
                       endpoint_url: str | None, key_block: str | None) -> Path:
    """Into the staging folder, naming the folder the set will have once complete."""
    path = staging / RECOVERY_DOC
    atomic_write_text(path, recovery_markdown(manifest, final, offsite_url, endpoint_url, key_block))
    return path
