"""Sequences close to running out: nextval() fails at the end of its range and every INSERT
relying on it fails with it.

Beyond PgHero's last_value / max_value: the sign of the increment says which end is the limit,
and a sequence owned by a smallint or integer column (serial, identity, OWNED BY) runs out
where the column does, even when the sequence itself is bigint. Never-used sequences (last_value
NULL) are skipped; sequences this role cannot read are listed as "info", since they were not checked.
"""

from __future__ import annotations

from tasks.maintenance.checks.finding import Finding
from tasks.maintenance.checks.rows import fetch_rows

CHECK = "sequences"

SEQUENCE_USAGE = """
WITH sequence AS (
  SELECT s.schemaname AS schema, s.sequencename AS sequence, c.oid AS seqoid, s.data_type::text AS data_type,
         s.increment_by, s.min_value, s.max_value, s.cycle, s.last_value,
         has_sequence_privilege(c.oid, 'SELECT,USAGE') AS readable
  FROM pg_sequences s
  JOIN pg_namespace n ON n.nspname = s.schemaname
  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.sequencename
),
owner AS (
  SELECT DISTINCT ON (d.objid) d.objid AS seqoid, d.refobjid::regclass::text AS owner_table,
         a.attname AS owner_column, format_type(a.atttypid, NULL) AS column_type
  FROM pg_depend d
  JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
  WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
    AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
  ORDER BY d.objid
),
bounds AS (
  SELECT sequence.*, owner.owner_table, owner.owner_column, owner.column_type,
         least(max_value, CASE owner.column_type WHEN 'smallint' THEN 32767 WHEN 'integer' THEN 2147483647
                          ELSE max_value END) AS effective_max,
         greatest(min_value, CASE owner.column_type WHEN 'smallint' THEN -32768 WHEN 'integer' THEN -2147483648
                             ELSE min_value END) AS effective_min
  FROM sequence LEFT JOIN owner USING (seqoid)
),
usage AS (
  SELECT bounds.*,
         CASE WHEN last_value IS NULL THEN NULL
              WHEN increment_by > 0
                THEN (last_value - effective_min)::numeric / nullif(effective_max - effective_min, 0)
              ELSE (effective_max - last_value)::numeric / nullif(effective_max - effective_min, 0)
         END AS used_ratio,
         CASE WHEN increment_by > 0 THEN effective_max - last_value ELSE last_value - effective_min END
           AS values_left
  FROM bounds
)
SELECT schema, sequence, data_type, increment_by, min_value, max_value, cycle, last_value, readable,
       owner_table, owner_column, column_type, effective_min, effective_max, round(used_ratio, 6) AS used_ratio,
       values_left
FROM usage
WHERE NOT readable OR used_ratio >= %(ratio)s
ORDER BY readable, used_ratio DESC, schema, sequence
"""


def check_sequences(cur, thresholds) -> list[Finding]:
    ratio = thresholds["sequence_used_ratio"]
    findings = []
    for row in fetch_rows(cur, SEQUENCE_USAGE, {"ratio": ratio}):
        subject = f"{row['schema']}.{row['sequence']}"
        if not row["readable"]:
            findings.append(Finding(CHECK, "info", subject,
                                    f"{subject} was not checked: this role has no SELECT or USAGE on it", None, row))
            continue
        limit = (f"{row['column_type']} column {row['owner_table']}.{row['owner_column']}"
                 if row["effective_max"] != row["max_value"] or row["effective_min"] != row["min_value"]
                 else row["data_type"] + " sequence")
        used = row["used_ratio"]
        findings.append(Finding(
            CHECK, "critical" if row["values_left"] < abs(row["increment_by"]) else "warn", subject,
            f"{subject} has used {used:.1%} of its range ({row['values_left']:,} values left, limit of its {limit}; "
            f"threshold {ratio:.0%})", used, row))
    return findings
