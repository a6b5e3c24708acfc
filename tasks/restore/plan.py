"""A restore's plan, made before anything is written: the set, its manifest, where each target
comes back, and what already there it would replace. Every refusal (an unknown set or target, a
destination that is not empty without `overwrite`) is raised from here, so a refused restore
changes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date as Date
from pathlib import Path

from tasks.backup.catalog import chosen_set
from tasks.backup.kinds import kind_of
from tasks.backup.manifest import ArtifactEntry, Manifest, ManifestError, read_manifest
from tasks.databases import is_sqlite
from tasks.environment import LoadedEnvironment
from tasks.restore.fetch import ArtifactSources, RestoreError, offsite_manifest
from tasks.restore.postgres import database_name, database_tables, database_url
from tasks.restore.publish import download_folder
from tasks.restore.restorers import restored_path

SOURCES = ("auto", "local", "offsite")


@dataclass(frozen=True)
class DatabaseDestination:
    """A PostgreSQL database to restore into (the URL carries credentials: never shown)."""
    server_url: str = field(repr=False)
    name: str
    probe_query: str | None
    tables: int | None  # None: the database does not exist yet

    def url(self, name: str | None = None) -> str:
        return database_url(self.server_url, name or self.name)


@dataclass
class TargetPlan:
    target: str
    entries: list[ArtifactEntry]
    database: DatabaseDestination | None = None
    paths: list[Path] = field(default_factory=list)            # relative to the restore folder
    replaced_paths: list[Path] = field(default_factory=list)   # of those, the ones that exist now

    @property
    def replaces_database(self) -> bool:
        return self.database is not None and self.database.tables is not None

    def shown(self, root: Path) -> str:
        places = ([f"database {self.database.name}"] if self.database else []) + [str(root / p) for p in self.paths]
        return ", ".join(places)


@dataclass
class RestorePlan:
    set_id: str
    manifest: Manifest
    manifest_problems: list[str]
    root: Path
    targets: list[TargetPlan]
    sources: ArtifactSources
    overwrite: bool

    def shown(self) -> dict[str, str]:
        return {t.target: t.shown(self.root) for t in self.targets}

    def replacing(self) -> list[str]:
        """What this restore would replace, in words (the audit entry names it before it starts)."""
        return ([f"database {t.database.name} ({t.database.tables} table(s))" for t in self.targets
                 if t.replaces_database]
                + [str(self.root / p) for t in self.targets for p in t.replaced_paths])


@dataclass(frozen=True)
class RestoreRequest:
    """What was asked for: the flow's parameters, as one value."""
    set_id: str | None = None
    date: Date | None = None
    source: str = "auto"              # auto | local | offsite
    targets: list[str] | None = None  # None: every target of the set
    database_names: dict[str, str] | None = None
    directory: str | None = None
    overwrite: bool = False


def plan_restore(env: LoadedEnvironment, run: str, request: RestoreRequest) -> RestorePlan:
    """Choose the set, read its manifest and plan every destination; RestoreError on any refusal."""
    set_id, date, source, targets = request.set_id, request.date, request.source, request.targets
    database_names, directory, overwrite = request.database_names, request.directory, request.overwrite
    if source not in SOURCES:
        raise RestoreError(f"source must be auto, local or offsite, not {source!r}")
    backup_set = chosen_set(env.store_url, env.name, set_id, date)
    if backup_set is None:
        wanted = f"set {set_id}" if set_id else f"a verified set of {date}" if date else "a verified set"
        raise RestoreError(f"{env.name} has no complete {wanted} in the catalog")
    root = Path(directory) if directory else env.block.output_dir("restores") / backup_set.set_id
    sources = _sources(env, backup_set.set_id, Path(backup_set.manifest_path).parent, source, root, run)
    manifest, problems = _manifest(env, backup_set.set_id, sources)
    by_target = {t: entries for t, entries in manifest.by_target().items() if not targets or t in targets}
    unknown = sorted(set(targets or ()) - set(by_target))
    if unknown:
        raise RestoreError(f"set {backup_set.set_id} holds no {', '.join(unknown)}; it holds "
                           f"{', '.join(sorted({e.target for e in manifest.artifacts}))}")
    databases = {f"db:{db.target}": db for db in env.block.databases()}
    planned, refused = [], []
    for target, entries in by_target.items():
        plan = TargetPlan(target, entries)
        if any(kind_of(e).restores_into_database for e in entries):
            db = databases.get(target)
            if db is None or is_sqlite(db.url.get_secret_value()):
                raise RestoreError(f"{target}: no PostgreSQL server configured to restore into")
            server = db.url.get_secret_value()
            name = (database_names or {}).get(target) or f"{database_name(server)}_restored_{backup_set.set_id[:8]}"
            plan.database = DatabaseDestination(server, name, db.probe_query, database_tables(server, name))
            if plan.database.tables and not overwrite:
                refused.append(f"{target}: database {name} exists and holds {plan.database.tables} table(s)")
        plan.paths = [p for p in (restored_path(e) for e in entries) if p is not None]
        plan.replaced_paths = [p for p in plan.paths if _occupied(root / p)]
        if plan.replaced_paths and not overwrite:
            refused += [f"{target}: {root / p} is not empty" for p in plan.replaced_paths]
        planned.append(plan)
    if refused:
        raise RestoreError("refusing to overwrite (pass overwrite=true; an emergency backup is taken first): "
                           + "; ".join(refused))
    return RestorePlan(backup_set.set_id, manifest, problems, root, planned, sources, overwrite)


def _occupied(path: Path) -> bool:
    return path.is_file() or path.is_symlink() or (path.is_dir() and any(path.iterdir()))


def _sources(env: LoadedEnvironment, set_id: str, set_dir: Path, source: str, root: Path, run: str) -> ArtifactSources:
    storage = env.block.offsite()
    local = set_dir if source in ("auto", "local") and set_dir.is_dir() else None
    if source == "local" and local is None:
        raise RestoreError(f"set {set_id}: the local set folder {set_dir} is gone; use source=offsite (or auto)")
    remote = storage if source in ("auto", "offsite") else None
    if source == "offsite" and storage is None:
        raise RestoreError("source=offsite but no [offsite] storage is configured")
    if local is None and remote is None:
        raise RestoreError(f"set {set_id}: the local set folder {set_dir} is gone and no [offsite] storage is "
                           "configured")
    return ArtifactSources(local, remote, download_folder(root, run))


def _manifest(env: LoadedEnvironment, set_id: str, sources: ArtifactSources) -> tuple[Manifest, list[str]]:
    """The local manifest (or its copy); offsite's when neither local one can be trusted."""
    problems = []
    if sources.set_dir is not None:
        try:
            return read_manifest(sources.set_dir)
        except ManifestError as exc:
            problems.append(str(exc))
    if sources.storage is not None:
        manifest, offsite_problems = offsite_manifest(sources.storage, env.name, set_id)
        return manifest, problems + offsite_problems
    raise RestoreError(f"set {set_id}: {'; '.join(problems)}; try source=offsite")
