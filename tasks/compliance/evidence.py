"""Compliance reports as evidence: what each file says about itself, files that are never replaced,
the detail files every count expands to, and a manifest of their SHA-256 hashes.

Each run writes its own files, the flow run id in every name, so a rerun for the same period never
replaces what an auditor may already have signed. Every file states its provenance (`Provenance`):
the period and whether it is complete or still partial, when and by whom it was generated, the flow
run, and the audit chain head the counts were taken up to. JSON carries it under `evidence`; a CSV
begins with `# key: value` lines, then the table (read it with
`csv.DictReader(itertools.dropwhile(lambda line: line.startswith("#"), handle))`); the markdown
says it at the top. The manifest lists every file with its SHA-256 and size, and its own hash goes
into the audit trail.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from tasks.audit.verify import open_chain
from tasks.compliance.period import Period
from tradeops.files import atomic_output, sha256_file
from tasks.reporting import flow_run_linker
from tradeops.store.canonical import ROW_COLUMNS, TIMESTAMP, iso_timestamp

MANIFEST_FORMAT = "tradeops-compliance-manifest/1"
# The detail file every SOX count expands to: one row per audit entry counted.
ENTRY_COLUMNS = ("id", "timestamp", "operation", "user", "success", "strategy_name", "version", "repository_hash",
                 "flow_run_id", "flow_run_link", "entry_hash")
_ROW_INDEXES = [ROW_COLUMNS.index("flow_run_id" if column == "flow_run_link" else column) for column in ENTRY_COLUMNS]
_SUCCESS, _FLOW_RUN, _LINK = (ENTRY_COLUMNS.index(c) for c in ("success", "flow_run_id", "flow_run_link"))


class EvidenceExists(FileExistsError):
    """A report file is already there: evidence is never replaced."""


@dataclass(frozen=True)
class ChainHead:
    id: int
    entry_hash: str


@dataclass(frozen=True)
class Provenance:
    """What every file of one report run states about itself."""

    environment: str
    period: str
    period_start: datetime
    period_end: datetime  # exclusive
    complete: bool  # False while the period is not over: the counts are partial
    generated_at: datetime
    requested_by: str
    flow_run_id: str | None
    flow_run_link: str | None
    chain_head: ChainHead | None  # the newest entry when the counts were taken: none after it is counted

    @classmethod
    def of(cls, environment: str, period: Period, requested_by: str, flow_run_id: str | None,
           head: ChainHead | None, now: datetime) -> "Provenance":
        return cls(environment, period.label, period.start, period.end, now >= period.end, now, requested_by,
                   flow_run_id, flow_run_linker()(flow_run_id), head)

    @property
    def status(self) -> str:
        return "complete" if self.complete else "partial"

    def to_dict(self) -> dict:
        values = asdict(self)
        for key in ("period_start", "period_end", "generated_at"):
            values[key] = values[key].isoformat()
        return {**values, "status": self.status}

    def statements(self) -> list[tuple[str, str]]:
        """The provenance as (label, text) lines, the way a CSV preamble and the markdown say it."""
        head = (f"entry id {self.chain_head.id}, hash {self.chain_head.entry_hash}" if self.chain_head
                else "none (the audit trail was empty)")
        status = ("complete: the period is over" if self.complete else
                  f"PARTIAL: the period runs to {self.period_end:%Y-%m-%d %H:%M} UTC; counted up to the generation time")
        return [("period", f"{self.period} ({self.period_start:%Y-%m-%d} to {self.period_end:%Y-%m-%d}, end "
                           "excluded, UTC)"),
                ("status", status), ("generated at", self.generated_at.isoformat()),
                ("requested by", self.requested_by), ("environment", self.environment),
                ("flow run", f"{self.flow_run_id} {self.flow_run_link or ''}".strip() if self.flow_run_id else "none"),
                ("audit chain head", head)]


def chain_head(store_url: str) -> ChainHead | None:
    """The newest audit entry now: a report's counts are taken up to it."""
    with open_chain(store_url) as chain:
        last = chain.last_id()
        return ChainHead(last, chain.hashes_at([last])[last]) if last is not None else None


class EvidenceWriter:
    """Writes one run's files into `folder`, each named `<stem>-<run tag>.<ext>`, none replacing another."""

    def __init__(self, folder: Path, run_tag: str, provenance: Provenance):
        self.folder, self.run_tag, self.provenance = folder, run_tag, provenance
        self.paths: list[Path] = []
        folder.mkdir(parents=True, exist_ok=True)

    def path_for(self, stem: str, extension: str) -> Path:
        return self.folder / f"{stem}-{self.run_tag}.{extension}"

    def _open(self, stem: str, extension: str):  # noqa: ANN202
        path = self.path_for(stem, extension)
        if path.exists():
            raise EvidenceExists(f"{path} exists already: a report file is never replaced")
        self.paths.append(path)
        return atomic_output(path)

    def json(self, stem: str, body: dict) -> Path:
        with self._open(stem, "json") as handle:
            handle.write(json.dumps({"evidence": self.provenance.to_dict(), **body}, indent=2, default=str).encode())
        return self.paths[-1]

    def csv(self, stem: str, columns: Sequence[str], rows: Iterable[Sequence | dict]) -> Path:
        """A CSV: the provenance as `# label: text` lines, then the header and the rows (dicts or sequences)."""
        with self._open(stem, "csv") as handle:
            text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
            for label, statement in self.provenance.statements():
                text.write(f"# {label}: {statement}\n")
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(columns)
            for row in rows:
                writer.writerow([row.get(c) for c in columns] if isinstance(row, dict) else row)
            text.flush()
            text.detach()
        return self.paths[-1]

    def markdown(self, stem: str, markdown: str) -> Path:
        with self._open(stem, "md") as handle:
            handle.write((markdown + "\n").encode())
        return self.paths[-1]

    def manifest(self) -> tuple[Path, str]:
        """The manifest of every file written so far (name, SHA-256, bytes); returns it and its SHA-256."""
        files = [{"name": p.name, "sha256": sha256_file(p), "bytes": p.stat().st_size} for p in self.paths]
        path = self.json("manifest", {"format": MANIFEST_FORMAT, "files": files})
        return path, sha256_file(path)


def period_entries(store_url: str, period: Period, through_id: int | None) -> Iterator[list]:
    """Every audit entry a SOX count of the period counts (stamped in it, up to the chain head), in
    id order, as ENTRY_COLUMNS rows, each with the link to its flow run; streamed."""
    if through_id is None:
        return
    link = flow_run_linker()
    start, end = iso_timestamp(period.start), iso_timestamp(period.end)  # as rows carry their time
    with open_chain(store_url) as chain:
        low, high = chain.window_ids(period.start, period.end)
        if low is None or low > through_id:
            return
        for row in chain.rows(low, min(high, through_id)):
            if start <= row[TIMESTAMP] < end:
                values = [row[index] for index in _ROW_INDEXES]
                values[_SUCCESS] = bool(values[_SUCCESS])
                values[_LINK] = link(values[_FLOW_RUN])
                yield values
