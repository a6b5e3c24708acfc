"""The value returned by ``create_sandbox``: where everything was put.

Kept in its own module so the builders can import it without importing the
package ``__init__`` (which imports them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SandboxPlatform:
    """A generated platform on disk (and in a database) that ops flows can operate on."""

    directory: Path  # absolute
    database_url: str  # "postgresql://..." as given, or "sqlite:////abs/DIR/platform.db"
    repos_dir: Path  # DIR/repos, one working copy per strategy, named after the strategy
    logs_dir: Path  # DIR/logs
    config_dir: Path  # DIR/config
    certs_dir: Path  # DIR/certs
    strategies: tuple[str, ...]
    certificates: dict[str, int]  # certificate file name -> days to expiry at creation (negative = expired)
    scale: str
    seed: int
