"""Consent in bulk through the core bulk path: ``crm import consent FILE`` (people) and
``crm import customer_consent FILE`` (companies), and their exports.

One row per person (or company), one column per channel holding ``opt_in``, ``opt_out`` or
``unsubscribed`` (empty: that channel is left as it is), with the date and source of the
statement. Replaces one CLI call per customer (about 2 s each) with set-based batches: one look-up
of the subjects, one of their stored consent, one INSERT, updates per changed row, an audit
entry per changed subject. The rules are those of :func:`crm_marketing.people.set_contact_consent`:
an older statement never replaces a newer one (the row is rejected, naming the channel), the
same status again is unchanged.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator
from sqlalchemy import insert, select

from crm_marketing.models import Consent, ContactConsent
from crm_marketing.schemas import CHANNELS, not_future
from crmcore.db.types import utcnow
from crmcore.models import Contact, Customer
from crmcore.schemas.fields import Ref, ShortText, UTCDatetime
from crmcore.sdk import BatchOutcome, BulkEntity
from crmcore.uow import UnitOfWork

Status = Literal["opt_in", "opt_out", "unsubscribed"]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: Status | None = None
    sms: Status | None = None
    phone: Status | None = None
    mail: Status | None = None
    event: Status | None = None
    social: Status | None = None
    ads: Status | None = None
    at: UTCDatetime | None = None
    source: ShortText | None = None

    @model_validator(mode="after")
    def _some_channel(self) -> _Row:
        if not any(getattr(self, c) for c in CHANNELS):
            raise ValueError(f"give a status (opt_in, opt_out, unsubscribed) in at least one channel column ({', '.join(CHANNELS)})")
        not_future(self.at, utcnow())
        return self

    def given(self) -> dict[str, str]:
        return {c: getattr(self, c) for c in CHANNELS if getattr(self, c)}


class ContactConsentRow(_Row):
    contact_ref: Ref


class CustomerConsentRow(_Row):
    customer_ref: Ref


def _subjects(uow: UnitOfWork, person: bool, refs: set[str]) -> dict[str, tuple[int, bool]]:
    """ref -> (id, archived) of the contacts (their company's archived flag) or customers."""
    if person:
        q = select(Contact.external_ref, Contact.id, Customer.archived).join(Customer, Customer.id == Contact.customer_id)
        q = q.where(Contact.external_ref.in_(refs))
    else:
        q = select(Customer.external_ref, Customer.id, Customer.archived).where(Customer.external_ref.in_(refs))
    return {ref: (i, bool(archived)) for ref, i, archived in uow.session.execute(q) if ref is not None}


def _writer(person: bool) -> Callable[[UnitOfWork, list[tuple[int, Any]]], BatchOutcome]:
    model: type[Consent] | type[ContactConsent] = ContactConsent if person else Consent
    id_col = ContactConsent.contact_id if person else Consent.customer_id
    ref_field, entity = ("contact_ref", "contact") if person else ("customer_ref", "customer")

    def write_batch(uow: UnitOfWork, rows: list[tuple[int, Any]]) -> BatchOutcome:
        out = BatchOutcome()
        subjects = _subjects(uow, person, {getattr(r, ref_field) for _, r in rows})
        ids = [v[0] for v in subjects.values()]
        found: list[Any] = list(uow.session.scalars(select(model).where(id_col.in_(ids))))
        stored: dict[tuple[int, str], Any] = {(getattr(c, id_col.key), c.channel): c for c in found}
        now, new = utcnow(), []
        for line, r in rows:
            ref = getattr(r, ref_field)
            if ref not in subjects:
                out.reject(line, ref_field, f"unknown {entity} {ref!r}", ref)
                continue
            sid, archived = subjects[ref]
            if archived:
                out.reject(line, ref_field, f"{entity} {ref!r} " + ("belongs to an archived customer" if person else "is archived"), ref)
                continue
            at, source = r.at or now, r.source or "import"
            changes = {ch: st for ch, st in r.given().items() if (sid, ch) not in stored or stored[sid, ch].status != st}
            newer = [ch for ch in changes if (sid, ch) in stored and stored[sid, ch].at > at]
            if newer:
                c = stored[sid, newer[0]]
                out.reject(line, newer[0], f"{entity} {ref!r} has a newer {newer[0]} consent ({c.status} at "
                           f"{c.at:%Y-%m-%d %H:%M}); an older statement cannot replace it", ref)
                continue
            if not changes:
                out.unchanged += 1
                continue
            before = {ch: {"status": stored[sid, ch].status, "at": stored[sid, ch].at} for ch in changes if (sid, ch) in stored}
            for ch, st in changes.items():
                if (sid, ch) in stored:
                    c = stored[sid, ch]
                    c.status, c.at, c.source = st, at, source
                else:
                    new.append({id_col.key: sid, "channel": ch, "status": st, "at": at, "source": source})
            out.updated += 1 if before else 0
            out.inserted += 0 if before else 1
            uow.audit.record("consent", entity, sid, before=before or None,
                             after={ch: {"status": st, "at": at, "source": source} for ch, st in changes.items()})
        if new:
            uow.session.execute(insert(model), new)
        uow.session.flush()
        return out

    return write_batch


def _exporter(person: bool) -> Callable[[UnitOfWork], Iterator[dict[str, Any]]]:
    def export_rows(uow: UnitOfWork) -> Iterator[dict[str, Any]]:
        """One row per subject with a statement: its channels, the latest date and its source."""
        if person:
            q = select(Contact.external_ref, ContactConsent.channel, ContactConsent.status, ContactConsent.at,
                       ContactConsent.source).join(Contact, Contact.id == ContactConsent.contact_id)
            q, key = q.order_by(ContactConsent.contact_id, ContactConsent.channel), "contact_ref"
        else:
            q = select(Customer.external_ref, Consent.channel, Consent.status, Consent.at, Consent.source).join(
                Customer, Customer.id == Consent.customer_id)
            q, key = q.order_by(Consent.customer_id, Consent.channel), "customer_ref"
        row: dict[str, Any] = {}
        for ref, channel, status, at, source in uow.session.execute(q.execution_options(yield_per=2000)):
            if row and row[key] != ref:
                yield row
                row = {}
            if not row:
                row = {key: ref, **dict.fromkeys(CHANNELS), "at": None, "source": None}
            row[channel] = status
            if row["at"] is None or at > row["_at"]:
                row["_at"], row["at"], row["source"] = at, at.isoformat() if isinstance(at, dt.datetime) else at, source
        if row:
            yield row
    return lambda uow: ({k: v for k, v in r.items() if k != "_at"} for r in export_rows(uow))


ENTITIES = (
    BulkEntity(name="consent", columns=("contact_ref", *CHANNELS, "at", "source"), required=("contact_ref",),
               key="contact_ref", schema=ContactConsentRow, write_batch=_writer(True), export_rows=_exporter(True),
               permission="marketing.consent.write",
               doc="consent per person: contact by external_ref, one status column per channel (empty: unchanged)"),
    BulkEntity(name="customer_consent", columns=("customer_ref", *CHANNELS, "at", "source"), required=("customer_ref",),
               key="customer_ref", schema=CustomerConsentRow, write_batch=_writer(False), export_rows=_exporter(False),
               permission="marketing.consent.write",
               doc="consent per company: customer by external_ref, one status column per channel (empty: unchanged)"),
)
