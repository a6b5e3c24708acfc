"""Btree index bloat, estimated from catalog statistics: no extension, no index scan.

The method is ioguix/pgsql-bloat-estimation's btree query (BSD-2-Clause, (c) 2015 Jehan-Guillaume
de Rorthais), restated: from pg_stats, the average width of one index tuple; from reltuples, the
leaf pages a freshly built index would need at its fillfactor; whatever relpages holds beyond that
is bloat. Adapted: the tuple header is MAXALIGN(IndexTupleData + null bitmap) as
IndexInfoFindDataOffset computes it, inheritance-parent statistics are not double counted, indexes
of never-analyzed tables (reltuples -1) or columns without statistics are skipped rather than
guessed, and indexes on `name` columns (stored as cstring) are marked unreliable.

Known limits: internal pages are not counted; PostgreSQL 13+ deduplication makes indexes on
repetitive values smaller than estimated (they read as unbloated). For exact figures, pgstattuple's
pgstatindex() reads the index.
"""

from __future__ import annotations

INDEX_BLOAT = """
WITH btree_index AS (
  SELECT i.indexrelid, i.indrelid, n.nspname AS schema, t.relname AS table_name, c.relname AS index_name,
         c.reltuples::numeric AS reltuples, c.relpages::numeric AS relpages, i.indnatts,
         string_to_array(i.indkey::text, ' ')::int2[] AS indkey,
         coalesce((SELECT option_value::int FROM pg_options_to_table(c.reloptions)
                   WHERE option_name = 'fillfactor'), 90) AS fillfactor
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_am am ON am.oid = c.relam
  WHERE am.amname = 'btree' AND c.relpages > 0 AND c.reltuples >= 0
    AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
),
index_column AS (
  -- a plain column's statistics are filed under its table, an expression's under the index
  SELECT b.indexrelid, pos,
         CASE WHEN b.indkey[pos] <> 0 THEN b.table_name ELSE b.index_name END AS stats_relation,
         CASE WHEN b.indkey[pos] <> 0 THEN ta.attname ELSE ia.attname END AS attname,
         CASE WHEN b.indkey[pos] <> 0 THEN ta.atttypid ELSE ia.atttypid END AS atttypid
  FROM btree_index b
  CROSS JOIN LATERAL generate_series(1, b.indnatts) AS pos
  LEFT JOIN pg_attribute ta ON ta.attrelid = b.indrelid AND ta.attnum = b.indkey[pos]
  LEFT JOIN pg_attribute ia ON ia.attrelid = b.indexrelid AND ia.attnum = pos
),
index_width AS (
  SELECT ic.indexrelid,
         sum((1 - coalesce(s.null_frac, 0)) * s.avg_width)::numeric AS data_width,
         bool_or(coalesce(s.null_frac, 0) > 0) AS has_nulls,
         count(s.avg_width) = count(*) AS all_stats,
         bool_or(ic.atttypid = 'pg_catalog.name'::regtype) AS has_name_column
  FROM index_column ic
  JOIN btree_index b ON b.indexrelid = ic.indexrelid
  LEFT JOIN pg_stats s ON s.schemaname = b.schema AND s.tablename = ic.stats_relation
                      AND s.attname = ic.attname AND NOT s.inherited
  GROUP BY ic.indexrelid
),
layout AS (
  SELECT b.*, w.data_width, w.has_name_column,
         current_setting('block_size')::numeric AS block_size,
         CASE WHEN version() ~ '64-bit|x86_64|ppc64|ia64|amd64|aarch64|arm64' THEN 8 ELSE 4 END::numeric AS maxalign,
         CASE WHEN w.has_nulls THEN 8 + 4 ELSE 8 END::numeric AS header_width  -- IndexTupleData (+ null bitmap)
  FROM btree_index b
  JOIN index_width w ON w.indexrelid = b.indexrelid
  WHERE w.all_stats
),
tuple AS (
  -- line pointer (4 bytes) + MAXALIGN(header) + MAXALIGN(data)
  SELECT l.*, 4 + ceil(header_width / maxalign) * maxalign + ceil(data_width / maxalign) * maxalign AS tuple_width
  FROM layout l
),
estimate AS (
  -- leaf space per page: block minus page header (24) and btree special space (16), to fillfactor;
  -- plus one metapage
  SELECT t.*,
         1 + ceil(reltuples / greatest(floor((block_size - 24 - 16) * fillfactor / 100 / tuple_width), 1))
           AS expected_pages
  FROM tuple t
),
bloat AS (
  SELECT schema, table_name, index_name, reltuples, relpages, fillfactor, tuple_width, expected_pages,
         has_name_column AS estimate_unreliable,
         relpages * block_size AS size_bytes,
         greatest(relpages - expected_pages, 0) * block_size AS bloat_bytes,
         round(greatest(relpages - expected_pages, 0) / relpages, 4) AS bloat_ratio
  FROM estimate
)
SELECT schema, table_name AS "table", index_name AS index, size_bytes, bloat_bytes, bloat_ratio,
       reltuples, relpages, expected_pages, tuple_width, fillfactor, estimate_unreliable
FROM bloat
WHERE bloat_ratio >= %(min_ratio)s AND bloat_bytes >= %(min_bytes)s
ORDER BY bloat_bytes DESC, 1, 2, 3
"""
