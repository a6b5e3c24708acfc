"""size samples and performance baselines

size_sample: sizes recorded at every health-check and backup run (databases and their largest
tables, disks, repositories, backup sets); the capacity report trends them.
performance_baseline: p50/p95/p99 per operation over a rolling window (performance-baselines).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 01:30:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('size_sample',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('flow_run_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('environment', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('series', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('capacity_bytes', sa.BigInteger(), nullable=True),
    sa.Column('sampled_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('size_sample', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_size_sample_flow_run_id'), ['flow_run_id'], unique=False)
        batch_op.create_index('ix_size_sample_series', ['environment', 'kind', 'series', 'sampled_at'], unique=False)

    op.create_table('performance_baseline',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('flow_run_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('environment', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('operation', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('window_start', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('window_end', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('samples', sa.Integer(), nullable=False),
    sa.Column('p50_seconds', sa.Float(), nullable=False),
    sa.Column('p95_seconds', sa.Float(), nullable=False),
    sa.Column('p99_seconds', sa.Float(), nullable=False),
    sa.Column('mean_seconds', sa.Float(), nullable=False),
    sa.Column('stddev_seconds', sa.Float(), nullable=False),
    sa.Column('computed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('performance_baseline', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_performance_baseline_flow_run_id'), ['flow_run_id'], unique=False)
        batch_op.create_index('ix_performance_baseline_operation', ['environment', 'operation', 'computed_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('performance_baseline', schema=None) as batch_op:
        batch_op.drop_index('ix_performance_baseline_operation')
        batch_op.drop_index(batch_op.f('ix_performance_baseline_flow_run_id'))
    op.drop_table('performance_baseline')
    with op.batch_alter_table('size_sample', schema=None) as batch_op:
        batch_op.drop_index('ix_size_sample_series')
        batch_op.drop_index(batch_op.f('ix_size_sample_flow_run_id'))
    op.drop_table('size_sample')
