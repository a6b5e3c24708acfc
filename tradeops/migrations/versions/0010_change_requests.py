"""change requests (runbook 003 "Change Management", CR-YYYY-NNN) and their approvals

change_request: the template's fields, risk, status, who submitted and implemented it and the
runs and audit entries that carried it out; change_approval: each approval (technical, business,
security) by whom and as which role.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 01:30:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('change_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('environment', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('number', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('benefits', sa.Text(), nullable=False),
    sa.Column('implementation_plan', sa.Text(), nullable=False),
    sa.Column('impacts', sa.Text(), nullable=False),
    sa.Column('mitigation', sa.Text(), nullable=False),
    sa.Column('rollback_plan', sa.Text(), nullable=False),
    sa.Column('risk', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('submitted_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('submitted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('implemented_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('implemented_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('flow_run_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('links_json', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('change_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_change_request_flow_run_id'), ['flow_run_id'], unique=False)
        batch_op.create_index('ux_change_request_environment_number', ['environment', 'number'], unique=True)

    op.create_table('change_approval',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('change_request_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('approved_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('approved_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('audit_entry_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['change_request_id'], ['change_request.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('change_approval', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_change_approval_change_request_id'), ['change_request_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('change_approval', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_change_approval_change_request_id'))

    op.drop_table('change_approval')
    with op.batch_alter_table('change_request', schema=None) as batch_op:
        batch_op.drop_index('ux_change_request_environment_number')
        batch_op.drop_index(batch_op.f('ix_change_request_flow_run_id'))

    op.drop_table('change_request')
