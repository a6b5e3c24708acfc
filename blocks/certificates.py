"""TLS certificates to watch: PEM files, a folder of them, and host:port endpoints."""

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

    def certificate_files(self) -> list[Path]:
        found = [Path(p) for p in self.files]
        if self.directory and Path(self.directory).is_dir():
            folder = Path(self.directory)
            found += [*folder.glob("*.pem"), *folder.glob("*.crt")]
        return sorted(set(found))
