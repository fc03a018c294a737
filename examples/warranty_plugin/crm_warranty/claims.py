"""Warranty claims: open one, move it through its life cycle, list a customer's, import many.

Everything goes through the unit of work, so permissions, visibility and the audit log are the
core's; the status moves are the core's status machine (:data:`crm_warranty.models.LIFE_CYCLE`).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, cast

from pydantic import BaseModel, ConfigDict
from sqlalchemy import CursorResult, select, update

from crm_warranty.models import Claim
from crmcore.models import Customer
from crmcore.sdk import (
    BatchOutcome,
    BulkEntity,
    InvalidInput,
    MoneyAmount,
    NotFound,
    ProfileSection,
    ProfileTable,
    Ref,
    Text,
    customer_ids_by_ref,
    keyed_upsert,
    new_ref,
    unknown_customer,
)
from crmcore.statemachine import move
from crmcore.uow import UnitOfWork


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    product: Text
    sold_on: dt.date
    amount: MoneyAmount | None = None
    external_ref: Ref | None = None


class ClaimRow(ClaimIn):
    """One row of ``crm import warranty_claims``."""

    customer_ref: Ref
    external_ref: Ref


def check_age(uow: UnitOfWork, sold_on: dt.date) -> None:
    limit = uow.crm.settings("warranty").max_claim_days
    age = (uow.now().date() - sold_on).days
    if age > limit:
        raise InvalidInput(f"sold_on: the sale is {age} days old; claims are taken for {limit} days "
                           "([warranty] max_claim_days)", [("sold_on", "too old")])
    if age < 0:
        raise InvalidInput("sold_on: a sale cannot be in the future", [("sold_on", "in the future")])


def open_claim(uow: UnitOfWork, customer_key: int | str, data: ClaimIn) -> Claim:
    uow.require("warranty.write")
    customer = uow.customers.resolve(customer_key)
    check_age(uow, data.sold_on)
    claim = Claim(customer_id=customer.id, product=data.product, sold_on=data.sold_on, amount=data.amount,
                  external_ref=data.external_ref or new_ref(), opened_at=uow.now())
    uow.session.add(claim)
    uow.session.flush()
    uow.audit.record("create", "warranty_claim", claim.id, after={"product": claim.product, "customer": customer.id})
    return claim


def get_claim(uow: UnitOfWork, claim_id: int) -> Claim:
    claim = uow.session.get(Claim, claim_id)
    if claim is None:
        raise NotFound("warranty claim", claim_id)
    uow.customers.resolve(claim.customer_id)  # a claim of a customer you may not see is not found either
    return claim


def decide(uow: UnitOfWork, claim_id: int, to: str, reason: str | None = None) -> Claim:
    claim = get_claim(uow, claim_id)
    move(uow, claim, to, reason=reason)
    return claim


def claims_of(uow: UnitOfWork, customer_key: int | str) -> list[Claim]:
    customer = uow.customers.resolve(customer_key)
    return list(uow.session.scalars(select(Claim).where(Claim.customer_id == customer.id).order_by(Claim.id)))


def as_dict(c: Claim) -> dict[str, Any]:
    return {"id": c.id, "customer_id": c.customer_id, "ref": c.external_ref, "product": c.product,
            "sold_on": c.sold_on.isoformat(), "status": c.status,
            "amount": None if c.amount is None else str(c.amount), "opened_at": c.opened_at.isoformat()}


def profile_section(uow: UnitOfWork, customer: Customer) -> ProfileSection | None:
    rows = uow.session.execute(select(Claim.id, Claim.product, Claim.status, Claim.amount)
                               .where(Claim.customer_id == customer.id).order_by(Claim.id)).all()
    if not rows:
        return None
    open_ = sum(1 for r in rows if r.status == "open")
    return ProfileSection("Warranty", {"claims": len(rows), "open": open_},
                          [ProfileTable("claims", ["id", "product", "status", "amount"],
                                        [[r.id, r.product, r.status, None if r.amount is None else str(r.amount)]
                                         for r in rows])])


def merge(uow: UnitOfWork, source_id: int, target_id: int) -> dict[str, int]:
    moved = cast(CursorResult[Any], uow.session.execute(  # an UPDATE: a cursor result, with rowcount
        update(Claim).where(Claim.customer_id == source_id).values(customer_id=target_id)))
    return {"warranty_claims": moved.rowcount}


def write_claims(uow: UnitOfWork, rows: list[tuple[int, ClaimRow]]) -> BatchOutcome:
    ids = customer_ids_by_ref(uow, (r.customer_ref for _, r in rows))
    out, good = BatchOutcome(), []
    for line, r in rows:
        if r.customer_ref not in ids:
            out.reject(line, "customer_ref", unknown_customer(r.customer_ref), r.external_ref)
            continue
        try:
            check_age(uow, r.sold_on)
        except InvalidInput as e:
            out.reject(line, "sold_on", str(e).removeprefix("sold_on: "), r.external_ref)
            continue
        good.append((line, {"external_ref": r.external_ref, "customer_id": ids[r.customer_ref], "product": r.product,
                            "sold_on": r.sold_on, **({"amount": Decimal(r.amount)} if r.amount is not None else {})}))
    written, _, _ = keyed_upsert(uow, Claim, good, audit_entity="warranty_claim")
    out.add(written)
    return out


def export_claims(uow: UnitOfWork) -> Any:
    for c, ref in uow.session.execute(select(Claim, Customer.external_ref).join(Customer).order_by(Claim.id)):
        yield {"external_ref": c.external_ref, "customer_ref": ref, "product": c.product,
               "sold_on": c.sold_on.isoformat(), "amount": c.amount}


BULK = BulkEntity(name="warranty_claims", columns=("external_ref", "customer_ref", "product", "sold_on", "amount"),
                  required=("external_ref", "customer_ref", "product", "sold_on"), key="external_ref",
                  schema=ClaimRow, write_batch=write_claims, export_rows=export_claims, permission="warranty.write",
                  doc="warranty claims (idempotent by external_ref)")
