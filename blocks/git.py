"""A set of strategy git repositories."""

from __future__ import annotations

from pathlib import Path

from prefect.blocks.core import Block
from pydantic import Field

from tradeops.files import git_repositories


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
        return git_repositories(self.root, self.paths)
