"""service: one CSAT answer per ticket (a partial unique index on service_survey_answers.ticket_id
WHERE kind = 'csat')

Answers were unique by their dedupe key only (``csat:t<ticket>``), which an answer written by
another path (an older import, a hand-made row) need not follow. Tickets that already have
several CSAT answers are resolved before the index is made, deterministically: the FIRST answer
(earliest ``answered_at``, then lowest id: the customer's first word, as recording refuses a
later one) is kept; each one removed is written to the audit log (action ``dedupe``, entity
``service_survey_answer``, with the removed row and the kept id), so nothing is lost unseen.

Revision ID: service_0004
Revises: service_0003
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op

import crmcore.db.types

revision = 'service_0004'
down_revision = 'service_0003'
branch_labels = None
depends_on = None

INDEX = "uq_service_survey_answers_csat_ticket"
WHERE = sa.text("kind = 'csat'")
ANSWERS = sa.table("service_survey_answers", sa.column("id", sa.Integer), sa.column("customer_id", sa.Integer),
                   sa.column("ticket_id", sa.Integer), sa.column("kind", sa.String), sa.column("score", sa.Integer),
                   sa.column("answered_at", crmcore.db.types.UTCDateTime), sa.column("dedupe", sa.String),
                   sa.column("source", sa.String))
AUDIT = sa.table("audit_log", sa.column("at", crmcore.db.types.UTCDateTime), sa.column("actor", sa.String),
                 sa.column("action", sa.String), sa.column("entity", sa.String), sa.column("entity_id", sa.String),
                 sa.column("before", sa.JSON), sa.column("after", sa.JSON))


def remove_duplicates() -> int:
    """Keep the first CSAT answer of each ticket (see the module docstring); audit every row
    removed. Returns how many were removed."""
    conn = op.get_bind()
    a = ANSWERS.c
    dup = (sa.select(a.ticket_id).where(a.kind == "csat", a.ticket_id.is_not(None))
           .group_by(a.ticket_id).having(sa.func.count() > 1))
    rows = conn.execute(sa.select(a.id, a.ticket_id, a.customer_id, a.score, a.answered_at, a.dedupe, a.source)
                        .where(a.kind == "csat", a.ticket_id.in_(dup))
                        .order_by(a.ticket_id, a.answered_at, a.id)).all()
    now, kept, removed = dt.datetime.now(dt.UTC), {}, 0
    for r in rows:
        if r.ticket_id not in kept:
            kept[r.ticket_id] = r.id
            continue
        conn.execute(sa.delete(ANSWERS).where(a.id == r.id))
        conn.execute(sa.insert(AUDIT).values(
            at=now, actor="migration service_0004", action="dedupe", entity="service_survey_answer",
            entity_id=str(r.id), before={"ticket_id": r.ticket_id, "customer_id": r.customer_id, "score": r.score,
                                          "answered_at": r.answered_at.isoformat(), "dedupe": r.dedupe,
                                          "source": r.source},
            after={"kept": kept[r.ticket_id]}))
        removed += 1
    return removed


def upgrade() -> None:
    remove_duplicates()
    with op.batch_alter_table('service_survey_answers', schema=None) as batch_op:
        batch_op.create_index(INDEX, ['ticket_id'], unique=True, sqlite_where=WHERE, postgresql_where=WHERE)


def downgrade() -> None:
    with op.batch_alter_table('service_survey_answers', schema=None) as batch_op:
        batch_op.drop_index(INDEX)
