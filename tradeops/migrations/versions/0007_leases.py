"""leases, and backup artifacts removed one by one

lease: locks in the ops store that a killed holder cannot keep.
backup_artifact.removed_at: retention removes each artifact when its class expires (a weekly
set's dumps after 12 weeks, its audit trail after 7 years), not whole sets.
backup_set.offsite_url: the offsite store that holds the whole set; a set whose copy was cut
short, or made before the offsite store changed, is copied (again) by the next backup run.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 09:00:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lease',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('holder', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('host', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('pid_started', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('flow_run_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('acquired_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    with op.batch_alter_table('backup_artifact', schema=None) as batch_op:
        batch_op.add_column(sa.Column('removed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    with op.batch_alter_table('backup_set', schema=None) as batch_op:
        batch_op.add_column(sa.Column('offsite_url', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('backup_set', schema=None) as batch_op:
        batch_op.drop_column('offsite_url')
    with op.batch_alter_table('backup_artifact', schema=None) as batch_op:
        batch_op.drop_column('removed_at')
    op.drop_table('lease')
