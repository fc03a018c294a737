"""web console: passwords, sign-in lockout, language of users; console sessions

Revision ID: 0006_console
Revises: 0005_api
"""
import sqlalchemy as sa
from alembic import op

import crmcore.db.types

revision = '0006_console'
down_revision = '0005_api'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_hash', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('locked_until', crmcore.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('language', sa.String(length=16), nullable=True))
    op.create_table('console_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', crmcore.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('user_agent', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_console_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_console_sessions_token_hash'))
    )
    op.create_index(op.f('ix_console_sessions_user_id'), 'console_sessions', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_console_sessions_user_id'), table_name='console_sessions')
    op.drop_table('console_sessions')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('language')
        batch_op.drop_column('locked_until')
        batch_op.drop_column('failed_logins')
        batch_op.drop_column('password_hash')
