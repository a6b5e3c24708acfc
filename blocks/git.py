"""A set of strategy git repositories."""

from __future__ import annotations

from pathlib import Path

from prefect.blocks.core import Block
from pydantic import Field


class GitRepositorySet(Block):
    """Repositories named explicitly, or every repository below a root folder."""

    _block_type_name = "Tradeops Git Repository Set"
    _block_type_slug = "tradeops-git-repository-set"
    _description = "Strategy git repositories (working copies or bare) to back up and version."

    target: str
    root: str | None = Field(None, description="Every git repository directly below this folder.")
    paths: list[str] = Field(default_factory=list, description="Explicit repository paths.")

    def repositories(self) -> list[Path]:
        """Paths of the repositories in the set, sorted by name; missing ones are kept for reporting."""
        found = [Path(p) for p in self.paths]
        if self.root:
            root = Path(self.root)
            if root.is_dir():
                found += [p for p in root.iterdir() if (p / ".git").exists() or (p / "HEAD").is_file()]
        return sorted(set(found), key=lambda p: p.name)
