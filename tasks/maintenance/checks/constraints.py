"""Constraints added NOT VALID and never validated: old rows are unchecked, and the planner cannot
rely on them. VALIDATE CONSTRAINT takes only a SHARE UPDATE EXCLUSIVE lock.

Beyond PgHero (foreign keys only): CHECK constraints and domain constraints too.
"""

from __future__ import annotations

from tasks.maintenance.checks.finding import Finding
from tasks.maintenance.checks.rows import fetch_rows

CHECK = "invalid_constraints"
CONSTRAINT_KINDS = {"c": "CHECK", "f": "FOREIGN KEY", "n": "NOT NULL"}

INVALID_CONSTRAINTS = """
SELECT n.nspname AS schema, rel.relname AS table, con.conname AS name, con.contype AS kind,
       CASE WHEN con.contypid <> 0 THEN format_type(con.contypid, NULL) END AS domain,
       fn.nspname AS foreign_schema, frel.relname AS foreign_table,
       pg_get_constraintdef(con.oid) AS definition
FROM pg_constraint con
JOIN pg_namespace n ON n.oid = con.connamespace
LEFT JOIN pg_class rel ON rel.oid = con.conrelid
LEFT JOIN pg_class frel ON frel.oid = con.confrelid
LEFT JOIN pg_namespace fn ON fn.oid = frel.relnamespace
WHERE NOT con.convalidated
ORDER BY 1, 2, 3
"""


def check_invalid_constraints(cur, thresholds) -> list[Finding]:
    findings = []
    for row in fetch_rows(cur, INVALID_CONSTRAINTS):
        owner = row["domain"] or f"{row['schema']}.{row['table']}"
        on = f"domain {owner}" if row["domain"] else owner
        kind = CONSTRAINT_KINDS.get(row["kind"], row["kind"])
        findings.append(Finding(
            CHECK, "warn", f"{owner}.{row['name']}",
            f"{kind} constraint {row['name']} on {on} is NOT VALID: existing rows were never checked "
            f"(threshold: all constraints validated)", None, row))
    return findings
