"""incidents, their timelines, remediation attempts and alert groups

incident / incident_event: issue 18 (runbooks 003, 004 severities and targets).
remediation_attempt: what the health check did, would do (dry run) or refused.
alert_group: a firing condition's notification state (one alert, reminders, a resolved notice).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 01:30:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert_group',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('environment', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('group_key', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('severity', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('first_seen_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('last_seen_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('last_notified_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('notifications', sa.Integer(), nullable=False),
    sa.Column('occurrences', sa.Integer(), nullable=False),
    sa.Column('resolved_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('silenced_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alert_group', schema=None) as batch_op:
        batch_op.create_index('ux_alert_group_key', ['environment', 'group_key'], unique=True)

    op.create_table('incident',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('environment', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('condition_key', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('severity', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('opened_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('opened_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('response_due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('resolution_due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('acknowledged_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('acknowledged_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('resolved_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('resolved_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('flow_run_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.create_index('ix_incident_condition', ['environment', 'condition_key', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_flow_run_id'), ['flow_run_id'], unique=False)

    op.create_table('remediation_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('flow_run_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('environment', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('condition_key', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('remediation_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_remediation_attempt_condition', ['environment', 'condition_key', 'started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_remediation_attempt_flow_run_id'), ['flow_run_id'], unique=False)

    op.create_table('incident_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('flow_run_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('incident_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_event_incident_id'), ['incident_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('incident_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_event_incident_id'))

    op.drop_table('incident_event')
    with op.batch_alter_table('remediation_attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_remediation_attempt_flow_run_id'))
        batch_op.drop_index('ix_remediation_attempt_condition')

    op.drop_table('remediation_attempt')
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_flow_run_id'))
        batch_op.drop_index('ix_incident_condition')

    op.drop_table('incident')
    with op.batch_alter_table('alert_group', schema=None) as batch_op:
        batch_op.drop_index('ux_alert_group_key')

    op.drop_table('alert_group')
