"""What the offsite WAL archive holds, and where its sequence breaks.

A restore replays segments one after another; one missing segment ends it there, silently
losing everything after. So every segment from the oldest base backup's start to the newest
archived one must be there, timeline by timeline (a timeline > 1 starts where its history
file says it branched). Like pgBackRest's `verify`, the check reads names only: the checksum in
each name is checked when a restore fetches the file.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from blocks import OffsiteStorage
from tasks.pitr.layout import wal_prefix
from tradeops.wal.names import HISTORY_NAME, Segment, parse_archived, parse_segment, wal_kind


@dataclass(frozen=True)
class ArchivedFile:
    name: str
    sha256: str
    key: str


@dataclass
class WalInventory:
    """The archived WAL of one cluster (system identifier), by file name."""

    segment_size: int
    files: dict[str, ArchivedFile] = field(default_factory=dict)

    def segments(self) -> dict[int, list[int]]:
        """Segment numbers per timeline, sorted; a .partial counts for its segment."""
        by_timeline: dict[int, set[int]] = defaultdict(set)
        for name in self.files:
            if wal_kind(name) in ("segment", "partial"):
                segment = parse_segment(name, self.segment_size)
                by_timeline[segment.timeline].add(segment.number)
        return {tli: sorted(numbers) for tli, numbers in sorted(by_timeline.items())}

    def newest_segment(self) -> str | None:
        names = [n for n in self.files if wal_kind(n) == "segment"]
        return max(names, default=None)

    def history_timelines(self) -> set[int]:
        return {int(m.group(1), 16) for n in self.files if (m := HISTORY_NAME.match(n))}


def wal_inventory(storage: OffsiteStorage, prefix: str, segment_size: int) -> WalInventory:
    inventory = WalInventory(segment_size)
    for key in storage.list_keys(wal_prefix(prefix)):
        parsed = parse_archived(key.rsplit("/", 1)[-1])
        if parsed is not None:
            inventory.files[parsed[0]] = ArchivedFile(parsed[0], parsed[1], key)
    return inventory


@dataclass(frozen=True)
class Gap:
    timeline: int
    first: str  # first missing segment
    last: str  # last missing segment
    count: int

    def describe(self) -> str:
        what = self.first if self.count == 1 else f"{self.first} .. {self.last} ({self.count} segments)"
        return f"timeline {self.timeline}: missing {what}"


def find_gaps(inventory: WalInventory, since: Segment | None = None) -> list[Gap]:
    """Missing segments between the first needed (`since`: the oldest base backup's start
    segment, else the oldest archived; older ones no restore needs) and the newest archived
    segment of each timeline, and timelines > 1 without their history file."""
    gaps: list[Gap] = []
    size = inventory.segment_size
    histories = inventory.history_timelines()
    for timeline, numbers in inventory.segments().items():
        start = since.number if since is not None and since.timeline == timeline else numbers[0]
        present = set(numbers)
        run: list[int] = []
        for number in range(start, numbers[-1] + 1):
            if number in present:
                if run:
                    gaps.append(_gap(timeline, run, size))
                    run = []
            else:
                run.append(number)
        if timeline > 1 and timeline not in histories:
            gaps.append(Gap(timeline, f"{timeline:08X}.history", f"{timeline:08X}.history", 1))
    return gaps


def _gap(timeline: int, run: list[int], size: int) -> Gap:
    return Gap(timeline, Segment(timeline, run[0]).name(size), Segment(timeline, run[-1]).name(size), len(run))
