"""Transaction ID wraparound: PostgreSQL stops assigning XIDs as a database's oldest unfrozen XID
nears 2^31 transactions old, so the report counts what is left, per database and per table.

Autovacuum freeze risk: past autovacuum_freeze_max_age (per-table reloption honoured) autovacuum
forces an anti-wraparound VACUUM of the table, which cannot be cancelled and may come at a bad time.
"""

from __future__ import annotations

from tasks.maintenance.checks.finding import Finding
from tasks.maintenance.checks.rows import fetch_rows

WRAPAROUND = "transaction_id_wraparound"
FREEZE = "autovacuum_freeze"

DATABASE_XID_REMAINING = """
SELECT datname AS database, age(datfrozenxid)::bigint AS xid_age,
       (2147483648 - age(datfrozenxid))::bigint AS xids_remaining
FROM pg_database
WHERE 2147483648 - age(datfrozenxid) < %(flag)s
ORDER BY xids_remaining, datname
"""
# A table's age is its own or its TOAST table's, whichever is older (as PgHero).
TABLE_XID_REMAINING = """
SELECT n.nspname AS schema, c.relname AS table,
       greatest(age(c.relfrozenxid), age(t.relfrozenxid))::bigint AS xid_age,
       (2147483648 - greatest(age(c.relfrozenxid), age(t.relfrozenxid)))::bigint AS xids_remaining
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
WHERE c.relkind IN ('r', 'm')
  AND 2147483648 - greatest(age(c.relfrozenxid), age(t.relfrozenxid)) < %(flag)s
ORDER BY xids_remaining, 1, 2
"""
AUTOVACUUM_FREEZE_RISK = """
WITH tables AS (
  SELECT n.nspname AS schema, c.relname AS table,
         greatest(age(c.relfrozenxid), age(t.relfrozenxid))::bigint AS xid_age,
         coalesce((SELECT option_value::bigint FROM pg_options_to_table(c.reloptions)
                   WHERE option_name = 'autovacuum_freeze_max_age'),
                  current_setting('autovacuum_freeze_max_age')::bigint) AS freeze_max_age
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
  WHERE c.relkind IN ('r', 'm')
)
SELECT *, freeze_max_age - xid_age AS xids_before_forced_vacuum
FROM tables
WHERE freeze_max_age - xid_age < %(margin)s
ORDER BY xids_before_forced_vacuum, 1, 2
"""


def _severity(remaining: int, thresholds) -> str:
    return "critical" if remaining < thresholds["xid_remaining_critical"] else "warn"


def check_transaction_id_wraparound(cur, thresholds) -> list[Finding]:
    flag = thresholds["xid_remaining_flag"]
    findings = []
    for row in fetch_rows(cur, DATABASE_XID_REMAINING, {"flag": flag}):
        findings.append(Finding(
            WRAPAROUND, _severity(row["xids_remaining"], thresholds), f"database {row['database']}",
            f"database {row['database']} has {row['xids_remaining']:,} transaction IDs left before wraparound "
            f"(age {row['xid_age']:,}; flagged under {flag:,})", row["xids_remaining"], row))
    for row in fetch_rows(cur, TABLE_XID_REMAINING, {"flag": flag}):
        subject = f"{row['schema']}.{row['table']}"
        findings.append(Finding(
            WRAPAROUND, _severity(row["xids_remaining"], thresholds), subject,
            f"{subject} has {row['xids_remaining']:,} transaction IDs left before wraparound "
            f"(age {row['xid_age']:,}; flagged under {flag:,})", row["xids_remaining"], row))
    return findings


def check_autovacuum_freeze(cur, thresholds) -> list[Finding]:
    """Already past freeze_max_age is "warn" (the forced vacuum is due or running); close to it, "info"."""
    margin = thresholds["autovacuum_freeze_margin"]
    findings = []
    for row in fetch_rows(cur, AUTOVACUUM_FREEZE_RISK, {"margin": margin}):
        subject, left = f"{row['schema']}.{row['table']}", row["xids_before_forced_vacuum"]
        findings.append(Finding(
            FREEZE, "warn" if left <= 0 else "info", subject,
            f"{subject} is {left:,} transactions from a forced anti-wraparound autovacuum "
            f"(age {row['xid_age']:,} vs autovacuum_freeze_max_age {row['freeze_max_age']:,}; "
            f"flagged under {margin:,})", left, row))
    return findings
