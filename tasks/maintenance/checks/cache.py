"""Buffer cache hit rate for tables and indexes: under 99% the working set no longer fits in
shared_buffers and reads go to disk (PgHero's table_hit_rate / index_hit_rate).

Counters start at the last stats reset: a fresh database has no reads, which is "info", not a failure.
"""

from __future__ import annotations

from tasks.maintenance.checks.finding import Finding
from tasks.maintenance.checks.rows import fetch_rows

CHECK = "cache_hit_rate"

TABLE_HIT_RATE = """
SELECT coalesce(sum(heap_blks_hit), 0) AS hits, coalesce(sum(heap_blks_read), 0) AS reads,
       sum(heap_blks_hit)::float8 / nullif(sum(heap_blks_hit + heap_blks_read), 0) AS rate
FROM pg_statio_user_tables
"""
INDEX_HIT_RATE = """
SELECT coalesce(sum(idx_blks_hit), 0) AS hits, coalesce(sum(idx_blks_read), 0) AS reads,
       sum(idx_blks_hit)::float8 / nullif(sum(idx_blks_hit + idx_blks_read), 0) AS rate
FROM pg_statio_user_indexes
"""


def check_cache_hit_rate(cur, thresholds) -> list[Finding]:
    minimum = thresholds["cache_hit_rate_min"]
    findings = []
    for subject, query in (("tables", TABLE_HIT_RATE), ("indexes", INDEX_HIT_RATE)):
        row = fetch_rows(cur, query)[0]
        rate = row["rate"]
        if rate is None:
            findings.append(Finding(CHECK, "info", subject,
                                    f"no {subject} blocks read since the last stats reset: hit rate not measurable "
                                    f"yet (threshold {minimum:.0%})", None, row))
            continue
        findings.append(Finding(
            CHECK, "warn" if rate < minimum else "ok", subject,
            f"{subject} cache hit rate is {rate:.2%} over {row['hits'] + row['reads']:,} block reads "
            f"(threshold {minimum:.0%})", rate, row))
    return findings
