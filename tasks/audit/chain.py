"""Walking a hash chain of audit rows, and saying precisely how the first break came about.

The walk is source-agnostic: it takes rows (ROW_COLUMNS tuples in id order) from anywhere — the
ops store, an exported JSONL copy — and stops at the first row whose content no longer matches its
hash or whose link does not point at the row before it. Only then does `classify_break` look
around the break (the rows before and after it, who holds the hash it links to) through a
`ChainLookup`, so the hot loop stays a hash and two comparisons per row.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Iterable, Protocol, Sequence

from tradeops.store.canonical import ENTRY_HASH, ID, OPERATION, PREV_HASH, TIMESTAMP, USER, canonical_from_row

Row = Sequence


@dataclass(frozen=True)
class EntryRef:
    """Which entry: enough for a person to find it (id) and recognise it (when, what, who)."""

    id: int
    timestamp: str
    operation: str
    user: str

    @classmethod
    def of(cls, row: Row) -> "EntryRef":
        return cls(row[ID], row[TIMESTAMP], row[OPERATION], row[USER])

    def __str__(self) -> str:
        return f"entry id {self.id} ({self.timestamp}, {self.operation}, {self.user})"


@dataclass(frozen=True)
class ChainBreak:
    """The first place the chain does not hold: kind is modified, deleted, inserted or reordered."""

    kind: str
    entry: EntryRef
    expected: str
    found: str
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class WalkResult:
    checked: int  # rows that held before the walk stopped (all of them when intact)
    head: str  # entry_hash of the last row that held (the expected link for the next)
    last_id: int | None
    broken: Row | None  # the row the walk stopped at
    computed: str | None  # that row's recomputed hash
    expected_link: str | None  # the prev_hash it should have carried


class ChainLookup(Protocol):
    """Point look-ups around a break, by id order; each returns rows or None."""

    def rows_before(self, entry_id: int, count: int) -> list[Row]: ...  # nearest first
    def row_after(self, entry_id: int) -> Row | None: ...
    def row_with_hash(self, entry_hash: str) -> Row | None: ...
    def rows_linking_to(self, entry_hash: str) -> list[Row]: ...


def entry_hash_of(row: Row) -> str:
    return hashlib.sha256(canonical_from_row(row).encode()).hexdigest()


def walk(rows: Iterable[Row], expected_link: str) -> WalkResult:
    """Follow the chain from `expected_link` (the hash the first row must link to) until it breaks."""
    sha256, content = hashlib.sha256, canonical_from_row
    checked, head, last_id = 0, expected_link, None
    for row in rows:
        computed = sha256(content(row).encode()).hexdigest()
        if computed != row[ENTRY_HASH] or row[PREV_HASH] != head:
            return WalkResult(checked, head, last_id, row, computed, head)
        head, last_id, checked = row[ENTRY_HASH], row[ID], checked + 1
    return WalkResult(checked, head, last_id, None, None, None)


def classify_break(lookup: ChainLookup, row: Row, computed: str, expected_link: str) -> ChainBreak:
    """Why `row` breaks the chain. Decided in this order, each naming the entry at fault:

    modified   its content no longer hashes to its stored hash (or its hash was rewritten, and the
               next entry still links to the original);
    inserted   the chain runs past it (the next entry links to the one before it), or it links back
               to an entry another entry already follows (a fork);
    reordered  it links to an entry that comes after it in id order;
    deleted    it links to a hash no entry has, across a gap in the ids.
    """
    before = lookup.rows_before(row[ID], 2)
    previous = before[0] if before else None
    following = lookup.row_after(row[ID])
    skipped_by_chain = following is not None and following[PREV_HASH] == expected_link
    me = EntryRef.of(row)

    if computed != row[ENTRY_HASH]:
        if row[PREV_HASH] != expected_link and skipped_by_chain:
            return ChainBreak("inserted", me, expected_link, row[PREV_HASH],
                              f"{me} was inserted: it does not link to the entry before it and the next "
                              f"entry (id {following[ID]}) links past it; its own hash does not hold either")
        return ChainBreak("modified", me, row[ENTRY_HASH], computed,
                          f"{me} was modified: its content hashes to {computed}, its stored hash is {row[ENTRY_HASH]}")

    if len(before) == 2 and row[PREV_HASH] == before[1][ENTRY_HASH] and previous[ENTRY_HASH] == expected_link:
        culprit = EntryRef.of(previous)
        return ChainBreak("inserted", culprit, previous[ENTRY_HASH], row[PREV_HASH],
                          f"{culprit} was inserted: the entry after it ({me}) links past it, to entry id "
                          f"{before[1][ID]}")
    target = lookup.row_with_hash(row[PREV_HASH])
    if target is not None and target[ID] > row[ID]:
        return ChainBreak("reordered", me, expected_link, row[PREV_HASH],
                          f"{me} is out of chain order: it links to entry id {target[ID]}, which comes after it "
                          f"(expected a link to {_describe(previous, expected_link)})")
    if skipped_by_chain:
        return ChainBreak("inserted", me, expected_link, row[PREV_HASH],
                          f"{me} was inserted: it does not link to {_describe(previous, expected_link)}, and the "
                          f"next entry (id {following[ID]}) links past it")
    if target is None:
        if previous is not None and previous[ID] + 1 == row[ID]:
            culprit = EntryRef.of(previous)
            return ChainBreak("modified", culprit, row[PREV_HASH], previous[ENTRY_HASH],
                              f"{culprit} was modified and its hash rewritten: the next entry (id {row[ID]}) "
                              f"still links to its original hash {row[PREV_HASH]}")
        gap = f"between entry id {previous[ID]} and entry id {row[ID]}" if previous else f"before entry id {row[ID]}"
        return ChainBreak("deleted", me, expected_link, row[PREV_HASH],
                          f"entries were deleted {gap}: {me} links to {row[PREV_HASH]}, which no entry has "
                          f"(expected a link to {_describe(previous, expected_link)})")
    siblings = [r[ID] for r in lookup.rows_linking_to(row[PREV_HASH]) if r[ID] != row[ID]]
    also = f", which entry id {siblings[0]} already follows (the chain forks)" if siblings else ""
    return ChainBreak("inserted", me, expected_link, row[PREV_HASH],
                      f"{me} was inserted: it links back to entry id {target[ID]}{also}, not to "
                      f"{_describe(previous, expected_link)}")


def _describe(previous: Row | None, expected_link: str) -> str:
    return f"entry id {previous[ID]} ({expected_link})" if previous is not None else f"the chain start ({expected_link})"


class RowsInMemory:
    """ChainLookup over rows already in memory (an exported copy read back, a test's rows)."""

    def __init__(self, rows: Iterable[Row]):
        self.rows = sorted(rows, key=lambda r: r[ID])
        self.position = {r[ID]: n for n, r in enumerate(self.rows)}

    def rows_before(self, entry_id: int, count: int) -> list[Row]:
        end = self.position[entry_id]
        return self.rows[max(end - count, 0):end][::-1]

    def row_after(self, entry_id: int) -> Row | None:
        following = self.position[entry_id] + 1
        return self.rows[following] if following < len(self.rows) else None

    def row_with_hash(self, entry_hash: str) -> Row | None:
        return next((r for r in self.rows if r[ENTRY_HASH] == entry_hash), None)

    def rows_linking_to(self, entry_hash: str) -> list[Row]:
        return [r for r in self.rows if r[PREV_HASH] == entry_hash]


def first_break(rows: Iterable[Row], expected_link: str) -> tuple[WalkResult, ChainBreak | None]:
    """Walk rows held in memory, in id order, and classify the first break, if any (e.g. an exported copy)."""
    lookup = RowsInMemory(rows)
    result = walk(lookup.rows, expected_link)
    if result.broken is None:
        return result, None
    return result, classify_break(lookup, result.broken, result.computed, result.expected_link)
