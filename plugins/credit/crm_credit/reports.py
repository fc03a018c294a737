"""Credit reads every face shows (CLI, HTTP routes, Python): the credit profile of a customer,
receivables ageing and DSO, with the core's visibility applied.

An "own" user's ageing, DSO and their totals count only the customers they may see
(``uow.visibility``): the ledger is loaded for those customers alone, so no total includes
another owner's receivables.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from crm_credit import ledger, scoring, services
from crm_credit.models import CreditScore
from crmcore.models import Customer
from crmcore.uow import UnitOfWork


def visible_ids(uow: UnitOfWork, ids: list[int] | None) -> list[int] | None:
    """The customers a report covers: ``ids`` as given (resolved through visibility by the
    caller), or every customer when the actor sees all (``None``), or the actor's own ones."""
    uow.require("customer.read")
    if ids is not None or not uow.visibility.own_only:
        return ids
    return list(uow.session.scalars(select(Customer.id).where(uow.visibility.customer_clause(Customer.owner_id))
                                    .order_by(Customer.id)))


#: what a report row says about its customer besides ``customer_id`` (added fields: older readers ignore them)
NAME_FIELDS = ("customer_ref", "customer_name")


def _named(uow: UnitOfWork, rows: list[Any]) -> list[dict[str, Any]]:
    """Rows as dicts with the customer's reference (``external_ref``) and name, one query per 5000."""
    ids = sorted({r.customer_id for r in rows})
    names: dict[int, tuple[str | None, str]] = {}
    for i in range(0, len(ids), 5000):
        names.update({cid: (ref, name) for cid, ref, name in uow.session.execute(
            select(Customer.id, Customer.external_ref, Customer.name).where(Customer.id.in_(ids[i:i + 5000])))})
    return [{**r.__dict__, **dict(zip(NAME_FIELDS, names.get(r.customer_id, (None, None))))} for r in rows]


def ageing(uow: UnitOfWork, as_of: dt.date, ids: list[int] | None = None) -> dict[str, Any]:
    """Open receivables in buckets per customer (with reference and name) and currency, and totals per currency."""
    rows, totals = ledger.ageing(ledger.open_items(uow.session, as_of, visible_ids(uow, ids)), as_of)
    return {"as_of": as_of, "customers": _named(uow, rows), "totals": [r.__dict__ for r in totals]}


def dso(uow: UnitOfWork, start: dt.date, end: dt.date, ids: list[int] | None = None) -> dict[str, Any]:
    """Days sales outstanding per customer (with reference and name) and currency, and totals per currency."""
    rows, totals = ledger.dso(ledger.open_items(uow.session, end, visible_ids(uow, ids)), start, end)
    return {"from": start, "to": end, "customers": _named(uow, rows), "totals": [r.__dict__ for r in totals]}


def profile_data(uow: UnitOfWork, cid: int) -> dict[str, Any]:
    """Limit, status, latest score with its reasons and factors, releases of a visible customer."""
    uow.customers.visible(cid)
    p = services.get_profile(uow, cid)
    sc = uow.session.get(CreditScore, cid)
    out: dict[str, Any] = {"customer_id": cid, "profile": None, "score": None, "releases": []}
    if p is not None:
        out["profile"] = {f: getattr(p, f) for f in services.PROFILE_FIELDS} | {"updated_at": p.updated_at,
                                                                               "updated_by": p.updated_by}
    if sc is not None:
        out["score"] = {"score": sc.score, "grade": sc.grade, "suggested_limit": sc.suggested_limit, "currency": sc.currency,
                        "reasons": sc.reasons, "scored_at": sc.scored_at,
                        "factors": {f: getattr(sc, f) for f in scoring.FACTORS}}
    out["releases"] = [{"reference": r.reference, "reason": r.reason, "expires_at": r.expires_at, "by": r.created_by,
                        "ended_at": r.ended_at} for r in services.releases(uow, cid)]
    return out


def on_hold(uow: UnitOfWork, limit: int = 20) -> list[dict[str, Any]]:
    """The visible customers on credit hold, longest on hold first (the console's home card)."""
    from crm_credit.models import CreditProfile

    uow.require("customer.read")
    rows = uow.session.execute(
        select(Customer.id, Customer.name, CreditProfile.status_reason, CreditProfile.updated_at)
        .join(CreditProfile, CreditProfile.customer_id == Customer.id)
        .where(CreditProfile.status == "hold", Customer.archived.is_(False),
               uow.visibility.customer_clause(Customer.owner_id))
        .order_by(CreditProfile.updated_at, Customer.id).limit(limit)).all()
    return [{"customer_id": r[0], "name": r[1], "reason": r[2], "since": r[3]} for r in rows]
