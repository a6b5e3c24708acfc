"""Indexes: invalid ones (a failed CREATE INDEX CONCURRENTLY, or the `_ccnew`/`_ccold` leftovers of
an interrupted REINDEX CONCURRENTLY), duplicates, unused ones, and estimated btree bloat.

Each costs write amplification and disk on every INSERT/UPDATE while giving the planner nothing.
"""

from __future__ import annotations

from tasks.maintenance.checks.finding import Finding
from tasks.maintenance.checks.index_bloat import INDEX_BLOAT
from tasks.maintenance.checks.rows import fetch_rows, human_bytes

SYSTEM_SCHEMAS = "('pg_catalog', 'information_schema', 'pg_toast')"
REINDEX_LEFTOVER = "_cc(new|old)[0-9]*$"  # REINDEX CONCURRENTLY names its copies <index>_ccnew[N] / _ccold[N]

INVALID_INDEXES = f"""
SELECT n.nspname AS schema, t.relname AS table, c.relname AS index, pg_get_indexdef(i.indexrelid) AS definition,
       pg_relation_size(i.indexrelid) AS size_bytes, i.indisready AS ready, i.indislive AS live,
       c.relname ~ '{REINDEX_LEFTOVER}' AS reindex_leftover,
       EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = i.indexrelid) AS being_built
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid AND n.nspname NOT IN {SYSTEM_SCHEMAS}
ORDER BY 1, 2, 3
"""
# Key columns, operator classes, collations and sort options as 1-based arrays (int2vector and
# oidvector are 0-based), so "a is a prefix of b" is one slice comparison.
INDEX_SHAPES = f"""
SELECT i.indexrelid, i.indrelid, n.nspname AS schema, t.relname AS table, c.relname AS index,
       am.amname AS method, i.indisunique AS is_unique, i.indisprimary AS is_primary,
       i.indnkeyatts AS key_count, i.indnatts AS column_count,
       (string_to_array(i.indkey::text, ' ')::int2[])[1:i.indnkeyatts] AS keys,
       (string_to_array(i.indclass::text, ' ')::oid[])[1:i.indnkeyatts] AS opclasses,
       (string_to_array(i.indcollation::text, ' ')::oid[])[1:i.indnkeyatts] AS collations,
       (string_to_array(i.indoption::text, ' ')::int2[])[1:i.indnkeyatts] AS options,
       pg_get_expr(i.indexprs, i.indrelid) AS expressions, pg_get_expr(i.indpred, i.indrelid) AS predicate,
       EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid)
         AS backs_constraint,
       pg_get_indexdef(i.indexrelid) AS definition, pg_relation_size(i.indexrelid) AS size_bytes
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_am am ON am.oid = c.relam
WHERE i.indisvalid AND i.indisready AND i.indislive AND n.nspname NOT IN {SYSTEM_SCHEMAS}
"""
# PgHero's rule, in SQL: the redundant index is neither unique, primary nor backing a constraint,
# has no INCLUDE columns, and its key columns (with opclass, collation and sort order) are a prefix
# of the covering index's, same method; expressions and predicates must match exactly (PgHero skips
# both). Non-btree methods have no prefix semantics: their column lists must be equal. Two identical
# plain indexes are reported once, the later name as the redundant one.
DUPLICATE_INDEXES = f"""
WITH shape AS ({INDEX_SHAPES})
SELECT r.schema, r.table, r.index, r.definition, r.size_bytes,
       c.index AS covering_index, c.definition AS covering_definition
FROM shape r
JOIN shape c ON c.indrelid = r.indrelid AND c.indexrelid <> r.indexrelid AND c.method = r.method
WHERE NOT r.is_unique AND NOT r.is_primary AND NOT r.backs_constraint
  AND r.key_count = r.column_count
  AND r.expressions IS NOT DISTINCT FROM c.expressions
  AND r.predicate IS NOT DISTINCT FROM c.predicate
  AND ((c.key_count > r.key_count AND r.method = 'btree') OR c.key_count = r.key_count)
  AND c.keys[1:r.key_count] = r.keys
  AND c.opclasses[1:r.key_count] = r.opclasses
  AND c.collations[1:r.key_count] = r.collations
  AND c.options[1:r.key_count] = r.options
  AND (c.key_count > r.key_count OR c.is_unique OR c.backs_constraint OR c.column_count > r.column_count
       OR c.index < r.index)
ORDER BY 1, 2, 3, c.key_count DESC, 6
"""
UNUSED_INDEXES = f"""
SELECT s.schemaname AS schema, s.relname AS table, s.indexrelname AS index, s.idx_scan,
       pg_relation_size(s.indexrelid) AS size_bytes, pg_get_indexdef(s.indexrelid) AS definition,
       pg_stat_get_db_stat_reset_time((SELECT oid FROM pg_database WHERE datname = current_database()))
         AS stats_reset
FROM pg_stat_user_indexes s
JOIN pg_index i ON i.indexrelid = s.indexrelid
WHERE s.idx_scan = 0
  AND i.indisvalid AND NOT i.indisunique AND NOT i.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = s.indexrelid)
  AND pg_relation_size(s.indexrelid) >= %(min_bytes)s
ORDER BY size_bytes DESC, 1, 2, 3
"""


def check_invalid_indexes(cur, thresholds) -> list[Finding]:
    findings = []
    for row in fetch_rows(cur, INVALID_INDEXES):
        subject = f"{row['schema']}.{row['index']}"
        if row["being_built"]:
            why, severity = "is still being built (CREATE INDEX CONCURRENTLY in progress)", "info"
        elif row["reindex_leftover"]:
            why, severity = ("is a leftover of an interrupted REINDEX CONCURRENTLY: drop it with "
                             "DROP INDEX CONCURRENTLY"), "warn"
        else:
            why, severity = "is invalid (a failed CREATE INDEX CONCURRENTLY?): drop and recreate it", "warn"
        findings.append(Finding(
            "invalid_indexes", severity, subject,
            f"index {subject} on {row['table']} {why}; {human_bytes(row['size_bytes'])} maintained on every "
            f"write, never used (threshold: no invalid indexes)", row["size_bytes"], row))
    return findings


def check_duplicate_indexes(cur, thresholds) -> list[Finding]:
    findings, seen = [], set()
    for row in fetch_rows(cur, DUPLICATE_INDEXES):
        subject = f"{row['schema']}.{row['index']}"
        if subject in seen:  # covered by several: name the widest once
            continue
        seen.add(subject)
        findings.append(Finding(
            "duplicate_indexes", "warn", subject,
            f"index {subject} ({human_bytes(row['size_bytes'])}) is redundant: {row['covering_index']} covers its "
            f"columns (threshold: no duplicates)", row["size_bytes"], row))
    return findings


def check_unused_indexes(cur, thresholds) -> list[Finding]:
    """idx_scan counts since the last stats reset, on this server only: check replicas too before dropping."""
    min_bytes = thresholds["unused_index_min_bytes"]
    findings = []
    for row in fetch_rows(cur, UNUSED_INDEXES, {"min_bytes": min_bytes}):
        subject = f"{row['schema']}.{row['index']}"
        findings.append(Finding(
            "unused_indexes", "warn", subject,
            f"index {subject} ({human_bytes(row['size_bytes'])}) has had no scans since stats were last reset "
            f"(threshold: 0 scans, >= {human_bytes(min_bytes)})", row["size_bytes"], row))
    return findings


def check_index_bloat(cur, thresholds) -> list[Finding]:
    """An estimate from table statistics: run ANALYZE first; deduplicated btrees may read as unbloated."""
    ratio, min_bytes = thresholds["index_bloat_ratio"], thresholds["index_bloat_min_bytes"]
    findings = []
    for row in fetch_rows(cur, INDEX_BLOAT, {"min_ratio": ratio, "min_bytes": min_bytes}):
        subject = f"{row['schema']}.{row['index']}"
        findings.append(Finding(
            "index_bloat", "warn", subject,
            f"index {subject} is an estimated {row['bloat_ratio']:.0%} bloat ({human_bytes(row['bloat_bytes'])} of "
            f"{human_bytes(row['size_bytes'])}; threshold {ratio:.0%} and {human_bytes(min_bytes)})",
            row["bloat_bytes"], row))
    return findings
