"""A small plugin with one bulk entity, ``bulk_leads``, for the bulk registration tests.

Its table lives on a metadata of its own (created by the tests' fixture), so importing this
module never adds a table to the core's metadata that other tests compare with migrations.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import CheckConstraint, Integer, MetaData, Numeric, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crmcore import hookimpl
from crmcore.bulk.registry import BatchOutcome, BulkEntity, keyed_upsert
from crmcore.schemas.fields import Email, LongText, Ref, Text

HOOK_CALLS: list[tuple[str, list[int]]] = []


class Base(DeclarativeBase):
    metadata = MetaData()


class BulkLead(Base):
    __tablename__ = "bulkplug_leads"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_ref: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    score: Mapped[int | None] = mapped_column(Integer)
    budget: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    notes: Mapped[str | None] = mapped_column(String(10000))
    created_at: Mapped[str | None] = mapped_column(String(40))

    # a rule only the database knows: a batch holding a score of 13 is refused by the database,
    # and the core must then lose that one row, not the batch
    __table_args__ = (CheckConstraint("score IS NULL OR score <> 13", name="ck_bulkplug_leads_unlucky"),)


class LeadRow(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    external_ref: Ref
    name: Text
    email: Email | None = None
    score: int | None = Field(default=None, ge=0, le=100)
    budget: Decimal | None = Field(default=None, ge=0, le=Decimal("1e12"), decimal_places=2)
    notes: LongText | None = None


def write_leads(uow: Any, rows: list[tuple[int, LeadRow]]) -> BatchOutcome:
    """Refuse an email another lead already has, upsert the rest, fire one hook per batch."""
    emails = [r.email for _, r in rows if r.email]
    taken = dict(uow.session.execute(select(BulkLead.email, BulkLead.external_ref).where(BulkLead.email.in_(emails))).all())
    good: list[tuple[int, dict[str, Any]]] = []
    refused = BatchOutcome()
    for line, r in rows:
        if r.email and taken.get(r.email, r.external_ref) != r.external_ref:
            refused.reject(line, "email", f"{r.email} belongs to lead {taken[r.email]}", r.external_ref)
            continue
        if r.email:
            taken[r.email] = r.external_ref
        good.append((line, r.model_dump(exclude_unset=True)))
    outcome, created, updated = keyed_upsert(uow, BulkLead, good, key="external_ref",
                                             on_insert={"created_at": dt.datetime.now(dt.UTC).isoformat()},
                                             audit_entity="bulk_lead")
    HOOK_CALLS.append(("created", created))
    if updated:
        HOOK_CALLS.append(("updated", updated))
    outcome.rejected.extend(refused.rejected)
    return outcome


def export_leads(uow: Any) -> Iterator[dict[str, Any]]:
    cols = [BulkLead.external_ref, BulkLead.name, BulkLead.email, BulkLead.score, BulkLead.budget, BulkLead.notes]
    for row in uow.session.execute(select(*cols).order_by(BulkLead.id).execution_options(yield_per=1000)):
        yield dict(row._mapping)


LEADS = BulkEntity(
    name="bulk_leads",
    columns=("external_ref", "name", "email", "score", "budget", "notes"),
    required=("external_ref", "name"),
    key="external_ref",
    schema=LeadRow,
    write_batch=write_leads,
    export_rows=export_leads,
    permission="bulkplug.lead.write",
    doc="leads of the bulk test plugin",
)


@hookimpl
def crm_register_bulk_entities(register: Any) -> None:
    register(LEADS)
