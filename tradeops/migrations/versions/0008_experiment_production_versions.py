"""experiments: the variant's strategy version and the production pointer's moves

`experiment conclude --action promote` moves the strategy's production pointer to the variant's
version and `experiment rollback` moves it back; the experiment records which version its
variant runs and where production was before and after.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 10:00:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("experiment") as batch_op:
        batch_op.add_column(sa.Column("variant_version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("production_json", sa.Text(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("experiment") as batch_op:
        batch_op.drop_column("production_json")
        batch_op.drop_column("variant_version")
