"""The restore checks on awkward but healthy data: they must pass it, and catch real differences.

Function level, on real PostgreSQL: a dump made by `dump_postgres`, restored by `restore_dump`,
checked by `check_database`; an archive made by `tar_paths`, extracted and checked file by file.
"""

from __future__ import annotations

import os

import psycopg2

from conftest import create_database, drop_database
from tasks.backup.archives import tar_paths
from tasks.backup.manifest import ArtifactEntry
from tasks.backup.postgres import dump_postgres
from tasks.restore.files import check_files, restore_archive
from tasks.restore.postgres import check_database, restore_dump

AWKWARD_SCHEMA = """
CREATE TABLE parent_a (id int);
CREATE TABLE parent_b (id int);
CREATE TABLE child () INHERITS (parent_a, parent_b);   -- two parents: counted once, as pg_dump sees it
INSERT INTO child VALUES (1), (2);
INSERT INTO parent_a VALUES (10);
CREATE TABLE "we""ird" (id int PRIMARY KEY, note text);  -- a quote in a table name
INSERT INTO "we""ird" VALUES (1, 'x');
CREATE TABLE orders (id int, weird_id int);
INSERT INTO orders VALUES (1, 1), (2, 99);
ALTER TABLE orders ADD CONSTRAINT orders_weird_fk FOREIGN KEY (weird_id) REFERENCES "we""ird" (id) NOT VALID;
CREATE TABLE ticks (ts timestamptz, px float8, raw bytea, span interval) PARTITION BY RANGE (ts);
CREATE TABLE ticks_2026 PARTITION OF ticks FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO ticks VALUES ('2026-03-01 12:00:00.123456+05', 0.1 + 0.2, '\\x00ff', '1 day 02:03:04');
"""


def _execute(url: str, statements: str) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    conn.cursor().execute(statements)
    conn.close()


def test_awkward_healthy_database_restores_and_checks_clean(pg_database, pg_server, tmp_path):
    _execute(pg_database, AWKWARD_SCHEMA)
    facts = dump_postgres(pg_database, tmp_path / "db.dump", jobs=1)
    assert facts["row_counts"]["public.child"] == 2 and facts["row_counts"]["public.parent_a"] == 1
    assert facts["row_counts"]['public.we"ird'] == 1 and facts["row_counts"]["public.ticks"] == 1
    entry = ArtifactEntry(target="db:awkward", kind="pg_dump", path="db.dump", sha256="", size=0,
                          details={k: facts[k] for k in ("row_counts", "table_checksums", "format", "jobs")})
    restored = create_database(pg_server, "tradeops_test_restore")
    try:
        # the restoring server's default text settings must not matter: the checks pin their own
        _execute(restored, f"ALTER DATABASE \"{restored.rsplit('/', 1)[1]}\" SET TimeZone = 'Asia/Tokyo'; "
                           f"ALTER DATABASE \"{restored.rsplit('/', 1)[1]}\" SET DateStyle = 'SQL, DMY'")
        toc = restore_dump(tmp_path / "db.dump", entry, restored, tmp_path / "scratch")
        assert check_database(restored, entry, toc, "SELECT count(*) FROM orders") == []

        _execute(restored, "UPDATE ticks SET px = px + 1e-12")  # one value, same row count
        problems = check_database(restored, entry, toc, None)
        assert len(problems) == 2  # the partition, and its partitioned table
        assert problems[0].startswith("db:awkward: public.ticks: content checksum")
        assert f"differs from the manifest's {facts['table_checksums']['public.ticks']}" in problems[0]
        assert problems[1].startswith("db:awkward: public.ticks_2026: content checksum")
    finally:
        drop_database(restored)


def test_archived_symlinks_restore_with_their_content(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "risk.yml").write_text("max_position: 10\n")
    os.symlink("risk.yml", config / "current.yml")
    facts = tar_paths([config], tmp_path / "config.tar.gz")
    entry = ArtifactEntry(target="config:c", kind="tar", path="config.tar.gz", sha256="", size=0, details=facts)
    restore_archive(tmp_path / "config.tar.gz", entry, tmp_path / "out")
    assert check_files(tmp_path / "out", entry) == []
    restored = next((tmp_path / "out").rglob("current.yml"))
    assert restored.read_text() == "max_position: 10\n" and not restored.is_symlink()
