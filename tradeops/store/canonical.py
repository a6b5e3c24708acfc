"""An audit entry's canonical content: the one definition of what an entry's hash covers.

`canonical_audit_content` builds it from an entry (the ORM object, or anything with its
attributes); it costs a dict and a sorted `json.dumps` per entry, too slow to verify a million
entries in seconds. `canonical_from_row` builds the very same string from a plain
tuple with one template (keys already in sorted order, values escaped by the same C encoder
`json.dumps` uses); tests/test_audit_verify.py proves the two agree, odd values included.
"""

from __future__ import annotations

import json
from datetime import datetime
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any, Mapping, Sequence

# The columns a chain walk reads, in this order; `timestamp` arrives as its ISO text.
ROW_COLUMNS = ("id", "timestamp", "operation", "user", "strategy_name", "version", "repository_hash",
               "execution_time_ms", "success", "changed_files", "compliance_flags", "details", "flow_run_id",
               "prev_hash", "entry_hash")
ID, TIMESTAMP, OPERATION, USER = 0, 1, 2, 3
PREV_HASH, ENTRY_HASH = 13, 14

_TEMPLATE = ('{"changed_files":%s,"compliance_flags":%s,"details":%s,"execution_time_ms":%s,"flow_run_id":%s,'
             '"operation":%s,"prev_hash":%s,"repository_hash":%s,"strategy_name":%s,"success":%s,'
             '"timestamp":%s,"user":%s,"version":%s}')
# What canonical_from_row writes for an empty prev_hash and timestamp: where sealed_template_parts cuts.
_PREV_HASH_SLOT, _TIMESTAMP_SLOT = '"prev_hash":""', '"timestamp":""'

# PostgreSQL's to_char() format for a UTC timestamp written as iso_timestamp writes it.
PG_ISO_TIMESTAMP = 'YYYY-MM-DD"T"HH24:MI:SS.US'


def iso_timestamp(moment: datetime) -> str:
    """As canonical_audit_content writes it: UTC wall time, no offset, microseconds."""
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds")


def row_of_entry(entry) -> tuple:
    """An AuditEntry (read back from an export, say) as a row in ROW_COLUMNS order."""
    return (entry.id, iso_timestamp(entry.timestamp), entry.operation, entry.user, entry.strategy_name,
            entry.version, entry.repository_hash, entry.execution_time_ms, entry.success, entry.changed_files,
            entry.compliance_flags, entry.details, entry.flow_run_id, entry.prev_hash, entry.entry_hash)


def canonical_from_row(row: Sequence) -> str:
    """canonical_audit_content(entry) for the entry in `row` (ROW_COLUMNS order)."""
    (_, timestamp, operation, user, strategy_name, version, repository_hash, execution_time_ms, success,
     changed_files, compliance_flags, details, flow_run_id, prev_hash) = row[:14]
    return _TEMPLATE % (
        _json_string(changed_files), _json_string(compliance_flags), _json_string(details),
        "null" if execution_time_ms is None else int.__repr__(execution_time_ms),
        "null" if flow_run_id is None else _json_string(flow_run_id),
        _json_string(operation), _json_string(prev_hash),
        "null" if repository_hash is None else _json_string(repository_hash),
        "null" if strategy_name is None else _json_string(strategy_name),
        "true" if success else "false", _json_string(timestamp), _json_string(user),
        "null" if version is None else _json_string(version),
    )


def sealed_template_parts(values: Mapping[str, Any]) -> tuple[str, str, str]:
    """canonical_from_row's string for an entry not yet sealed, as three parts to join around its
    prev_hash and timestamp: content == a + prev_hash + b + timestamp + c.

    The parts are cut from canonical_from_row's own output for the entry with both values empty,
    so there is one definition of the canonical form. The cuts are unambiguous: inside a value
    every quote is escaped (\\"), so an unescaped `"prev_hash":""` can only be the key itself.
    Both sealed values are ASCII that JSON writes as themselves in quotes (a SHA-256 hex digest;
    `iso_timestamp`'s digits, '-', ':', 'T' and '.'), so the quotes go into the parts and whoever
    joins them needs no JSON of its own; every part is ASCII (encode_basestring_ascii escapes the
    rest). `values` holds the entry's other fields as they are stored (changed_files,
    compliance_flags and details as text).
    """
    row = [values.get(column) for column in ROW_COLUMNS[:PREV_HASH + 1]]
    row[TIMESTAMP] = row[PREV_HASH] = ""
    before_prev_hash, _, rest = canonical_from_row(row).partition(_PREV_HASH_SLOT)
    before_timestamp, _, after_timestamp = rest.partition(_TIMESTAMP_SLOT)
    return (before_prev_hash + '"prev_hash":"', '"' + before_timestamp + '"timestamp":"', '"' + after_timestamp)


def canonical_audit_content(entry: Any) -> str:
    """The fields an entry's hash covers, in a fixed order and format."""
    fields = {
        "timestamp": _iso(entry.timestamp), "operation": entry.operation, "user": entry.user,
        "strategy_name": entry.strategy_name, "version": entry.version,
        "repository_hash": entry.repository_hash, "execution_time_ms": entry.execution_time_ms,
        "success": entry.success, "changed_files": entry.changed_files,
        "compliance_flags": entry.compliance_flags, "details": entry.details,
        "flow_run_id": entry.flow_run_id, "prev_hash": entry.prev_hash,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds")
