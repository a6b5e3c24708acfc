"""Benchmark: our daily git backup of 50 repositories vs the runbook recipe, first and unchanged run.

Runbook 000 git-backup-daily.sh: per repository `git clone --mirror` then `tar czf`. Ours: one
`git bundle create --all` (verified) per repository; on an unchanged run, refs compared with the
last verified backup and the earlier bundle hard-linked. Both run here on the same 50 sandbox
repositories (plain functions; Prefect orchestration is not in the timing).

    .venv/bin/python bench/backup_git.py [--repos 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

from _common import median_seconds, ratio_line

from tasks.backup.targets import backup_repository
from tradeops.sandbox.dataset import strategy_names
from tradeops.sandbox.git_repos import create_strategy_repos


def runbook_recipe(repos: list[Path], out: Path) -> None:
    for repo in repos:
        mirror = out / f"{repo.name}.git"
        subprocess.run(["git", "clone", "--quiet", "--mirror", str(repo), str(mirror)], check=True)
        subprocess.run(["tar", "czf", str(out / f"{repo.name}.tar.gz"), "-C", str(out), mirror.name], check=True)
        shutil.rmtree(mirror)


def ours(repos: list[Path], set_dir: Path, previous: dict[str, object]) -> dict[str, object]:
    """Returns, per repository, what a verified catalog row would hold for the next run."""
    catalog = {}
    for repo in repos:
        [entry] = backup_repository(f"git:{repo.name}", repo, set_dir, previous.get(repo.name))
        catalog[repo.name] = SimpleNamespace(set_id=set_dir.name, path=str(set_dir / entry.path),
                                             details=json.dumps(entry.details), offsite_key=None)
    return catalog


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        create_strategy_repos(root / "repos", strategy_names(args.repos), 7, datetime.now(timezone.utc), 40)
        repos = sorted((root / "repos").iterdir())
        counter = iter(range(10_000))

        def fresh(name: str) -> Path:
            path = root / f"{name}-{next(counter)}"
            path.mkdir()
            return path

        first_ours = median_seconds(lambda: ours(repos, fresh("ours"), {}), args.rounds)
        first_recipe = median_seconds(lambda: runbook_recipe(repos, fresh("recipe")), args.rounds)
        verified = ours(repos, fresh("verified"), {})
        unchanged_ours = median_seconds(lambda: ours(repos, fresh("ours"), verified), args.rounds)
        unchanged_recipe = median_seconds(lambda: runbook_recipe(repos, fresh("recipe")), args.rounds)
    print(ratio_line(f"git backup of {len(repos)} repositories, first run", first_ours,
                     "clone --mirror + tar czf", first_recipe, args.rounds))
    print(ratio_line(f"git backup of {len(repos)} repositories, unchanged run", unchanged_ours,
                     "clone --mirror + tar czf", unchanged_recipe, args.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
