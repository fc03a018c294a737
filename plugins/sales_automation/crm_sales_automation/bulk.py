"""Leads through the core bulk path: ``crm import leads FILE`` / ``crm export leads``.

The core reads and batches the file; :func:`write_leads_batch` writes one batch with a few
set-based statements (owners and e-mails looked up once per batch, then the core's
``keyed_upsert``). Re-importing a file is a no-op (same key, same content = unchanged). A row
whose e-mail already belongs to another lead -- stored, or earlier in the same file -- is
rejected with the lead it matches, never inserted as a duplicate. A converted lead's status is
final: an import cannot reopen it.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import String, case, cast, func, literal, select

from crm_sales_automation.enums import LeadSource, LeadStatus
from crm_sales_automation.models import Lead
from crm_sales_automation.schemas import Word
from crm_sales_automation.vocabulary import words
from crmcore.db.types import utcnow
from crmcore.models import Customer, User
from crmcore.schemas.fields import CountryCode, Email, Line, LongText, Phone, Ref, Text, normalise_phone
from crmcore.sdk import BatchOutcome, BulkEntity, keyed_upsert
from crmcore.uow import UnitOfWork

COLUMNS = ("external_ref", "name", "company", "email", "phone", "country", "source", "status", "owner", "notes", "referred_by")
_OPEN = (LeadStatus.NEW, LeadStatus.CONTACTED, LeadStatus.QUALIFIED, LeadStatus.DISQUALIFIED)


class LeadImportRow(BaseModel):
    """One row of a leads file (empty cells are left out: an import never blanks a stored value)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    external_ref: Ref
    name: Text
    company: Text | None = None
    email: Email | None = None
    phone: Phone | None = None
    country: CountryCode | None = None
    source: Word | None = None  # a word of [vocabularies] lead_sources (checked per batch)
    status: LeadStatus | None = None
    owner: Line | None = Field(None, min_length=1, max_length=64)
    notes: LongText | None = None
    referred_by: Ref | None = None  # the referring customer: its reference, or #id

    @model_validator(mode="after")
    def _check(self) -> LeadImportRow:
        if self.phone:
            object.__setattr__(self, "phone", normalise_phone(self.phone, self.country))
        if self.status is LeadStatus.CONVERTED:
            raise ValueError("status: a lead is converted with `crm sales lead convert`, not by import")
        return self


def _referrers(uow: UnitOfWork, keys: set[str]) -> dict[str, int]:
    """Referring customers of a batch by reference (or ``#id``), only those the actor may see:
    two queries, whatever the batch size (the reference wins over an id, as in ``resolve``)."""
    if not keys:
        return {}
    visible = uow.visibility.customer_clause(Customer.owner_id)
    found = {ref: cid for ref, cid in uow.session.execute(select(Customer.external_ref, Customer.id).where(
        Customer.external_ref.in_(keys), Customer.merged_into_id.is_(None), visible)) if ref is not None}
    ids = {k: int(k.lstrip("#")) for k in keys - set(found) if k.lstrip("#").isdigit() and len(k) <= 19}
    if ids:
        known = set(uow.session.scalars(select(Customer.id).where(Customer.id.in_(set(ids.values())),
                                                                 Customer.merged_into_id.is_(None), visible)))
        found.update({k: v for k, v in ids.items() if v in known})
    return found


def write_leads_batch(uow: UnitOfWork, rows: list[tuple[int, LeadImportRow]]) -> BatchOutcome:
    out = BatchOutcome()
    referrers = _referrers(uow, {r.referred_by for _, r in rows if r.referred_by})
    sources = words(uow).allowed("lead_sources")
    owners = {r.owner for _, r in rows if r.owner}
    owner_ids = dict(uow.session.execute(select(User.username, User.id).where(User.username.in_(owners))).all()) if owners else {}
    emails = {r.email.lower() for _, r in rows if r.email}
    by_email: dict[str, tuple[int, str]] = {}
    if emails:
        for lid, ref, email in uow.session.execute(select(Lead.id, Lead.external_ref, Lead.email)
                                                   .where(func.lower(Lead.email).in_(emails))):
            by_email.setdefault((email or "").lower(), (lid, ref))
    refs = [r.external_ref for _, r in rows]
    converted = dict(uow.session.execute(select(Lead.external_ref, Lead.referred_by_id).where(
        Lead.external_ref.in_(refs), Lead.status == LeadStatus.CONVERTED)).all())
    keep: list[tuple[int, dict[str, Any]]] = []
    in_file: dict[str, tuple[int, str]] = {}
    for line, r in rows:
        values = r.model_dump(exclude_unset=True, exclude_none=True)
        owner = values.pop("owner", None)
        if owner is not None:
            if owner not in owner_ids:
                out.reject(line, "owner", f"unknown user {owner!r}", r.external_ref)
                continue
            values["owner_id"] = owner_ids[owner]
        if r.external_ref in converted and "status" in values:
            out.reject(line, "status", f"lead {r.external_ref!r} is converted; its status is final", r.external_ref)
            continue
        key = values.pop("referred_by", None)
        if key is not None:
            if key not in referrers:
                out.reject(line, "referred_by", f"unknown customer {key!r}", r.external_ref)
                continue
            values["referred_by_id"] = referrers[key]
            if r.external_ref in converted and converted[r.external_ref] != referrers[key]:
                out.reject(line, "referred_by", f"lead {r.external_ref!r} is converted; set its customer's referral",
                           r.external_ref)
                continue
        if r.email:
            e = r.email.lower()
            other = by_email.get(e) or in_file.get(e)
            if other is not None and other[1] != r.external_ref:
                where = f"line {other[0]}" if e in in_file and e not in by_email else f"lead {other[0]}"
                out.reject(line, "email", f"{r.email} already belongs to {where} ({other[1]}); not duplicated",
                           r.external_ref)
                continue
            in_file.setdefault(e, (line, r.external_ref))
        if "status" in values:
            values["status"] = values["status"].value
        if "source" in values and values["source"] not in sources:
            out.reject(line, "source", f"{values['source']!r} is not allowed (allowed: {', '.join(sources)}; "
                       f"configured in crm.toml [vocabularies] lead_sources)", r.external_ref)
            continue
        keep.append((line, values))
    if keep:
        now = utcnow()
        done, _, _ = keyed_upsert(uow, Lead, keep, key="external_ref",
                                  defaults={"status": LeadStatus.NEW.value, "source": LeadSource.OTHER.value},
                                  on_insert={"created_at": now, "updated_at": now}, on_update={"updated_at": now},
                                  audit_entity="sales.lead")
        out.inserted, out.updated, out.unchanged = done.inserted, done.updated, done.unchanged
        out.rejected.extend(done.rejected)
    return out


def export_leads(uow: UnitOfWork) -> Iterator[dict[str, Any]]:
    referrer = func.coalesce(Customer.external_ref, literal("#") + cast(Customer.id, String))
    q = (select(Lead.external_ref, Lead.name, Lead.company, Lead.email, Lead.phone, Lead.country, Lead.source, Lead.status,
                User.username.label("owner"), Lead.notes, case((Customer.id.is_(None), None), else_=referrer).label("referred_by"))
         .outerjoin(User, User.id == Lead.owner_id).outerjoin(Customer, Customer.id == Lead.referred_by_id)
         .order_by(Lead.id).execution_options(yield_per=2000))
    for row in uow.session.execute(q):
        rec = dict(row._mapping)
        for k in ("source", "status"):
            rec[k] = getattr(rec[k], "value", rec[k])
        yield {c: rec[c] for c in COLUMNS}


LEADS = BulkEntity(name="leads", columns=COLUMNS, required=("external_ref", "name"), key="external_ref",
                   schema=LeadImportRow, write_batch=write_leads_batch, export_rows=export_leads,
                   permission="sales.lead.write", doc="sales leads (sales_automation plugin)")
