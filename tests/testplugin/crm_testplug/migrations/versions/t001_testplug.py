"""testplug notes

Revision ID: t001_testplug
Revises:
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "t001_testplug"
down_revision = None
branch_labels = ("testplug",)
depends_on = "0001_core"


def upgrade() -> None:
    op.create_table(
        "testplug_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_testplug_notes_customer_id_customers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_testplug_notes")),
    )
    with op.batch_alter_table("testplug_notes") as batch_op:
        batch_op.create_index(batch_op.f("ix_testplug_notes_customer_id"), ["customer_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("testplug_notes") as batch_op:
        batch_op.drop_index(batch_op.f("ix_testplug_notes_customer_id"))
    op.drop_table("testplug_notes")
