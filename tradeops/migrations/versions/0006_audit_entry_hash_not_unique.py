"""audit entries: entry_hash no longer unique

The unique index on entry_hash served no query and guarded nothing the chain does not: an entry's
hash covers its predecessor's, so two equal hashes would be a fork, which `audit verify` reports
(as it reports any row inserted with SQL, constraint or not). It cost every append a write to a
random leaf of an index as large as the trail, seven years of it, and after each checkpoint a
full-page image in the WAL (bench/audit.py, appends with 8 writers).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 15:40:00
"""

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# SQLite keeps the constraint unnamed: batch mode names it by this convention to drop it.
_SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("audit_entry_entry_hash_key", "audit_entry", type_="unique")
        return
    with op.batch_alter_table("audit_entry", naming_convention=_SQLITE_NAMES) as batch_op:
        batch_op.drop_constraint("uq_audit_entry_entry_hash", type_="unique")


def downgrade() -> None:
    with op.batch_alter_table("audit_entry") as batch_op:
        batch_op.create_unique_constraint("audit_entry_entry_hash_key", ["entry_hash"])
