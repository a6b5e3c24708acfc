"""TLS certificates to watch: PEM files, a folder of them, and host:port endpoints; and how to
renew them (runbook 001 "Certificate Management": check daily, renew 30 days before expiry)."""

from __future__ import annotations

from pathlib import Path

from prefect.blocks.core import Block
from pydantic import Field


class CertificateSet(Block):
    _block_type_name = "Tradeops Certificate Set"
    _block_type_slug = "tradeops-certificate-set"
    _description = "Certificate files and TLS endpoints whose expiry tradeops checks."

    target: str
    files: list[str] = Field(default_factory=list)
    directory: str | None = Field(None, description="Every *.pem / *.crt file in this folder.")
    endpoints: list[str] = Field(default_factory=list, description="host:port TLS endpoints.")
    hostnames: dict[str, list[str]] = Field(
        default_factory=dict, description="Certificate file name -> the host names it must serve.")
    ca_file: str | None = Field(None, description="PEM bundle of trusted roots (default: the system's).")
    renew_command: list[str] = Field(
        default_factory=list,
        description="Renewal command (argv, no shell); {cert}, {key} and {domain} are filled in per certificate.")
    renew_below_days: int = Field(30, ge=1, description="Renew certificates with fewer days left than this.")
    renew_timeout_seconds: float = Field(300, gt=0)

    def certificate_files(self) -> list[Path]:
        found = [Path(p) for p in self.files]
        if self.directory and Path(self.directory).is_dir():
            folder = Path(self.directory)
            found += [*folder.glob("*.pem"), *folder.glob("*.crt")]
        return sorted(set(found))
