"""The credit pages of the console: a customer's credit (profile, hold, release), the ageing.

Handlers map forms onto :mod:`crm_credit.services` and :mod:`crm_credit.reports` with the API's
schemas; the services check ``credit.*`` (a release needs ``credit.release`` whatever the page
shows) and visibility. The 360° section reuses the figures the profile already computed.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from crm_credit import reports, services
from crm_credit.routes import HoldIn
from crm_credit.schemas import ProfileUpdate, ReleaseRequest
from crmcore.console import ConsoleSection, View
from crmcore.console.forms import bind, service_errors, values
from crmcore.console.web import status_for
from crmcore.errors import CRMError, InvalidInput, NotFound, Vetoed
from crmcore.models import Customer
from crmcore.sdk import MAX_ID

PROFILE_FIELDS = ("limit", "currency", "payment_terms_days", "status", "reason", "last_review")
HOLD_FIELDS = ("reason",)
RELEASE_FIELDS = ("reason", "days", "reference")
STATUSES = ("good", "watch", "blocked")
SHOWN = 200  # ageing rows on the page (largest open amounts first); the totals cover every row


def _cid(view: View) -> int:
    cid = int(view.request.path_params["cid"])
    if not 0 < cid <= MAX_ID:
        raise NotFound("customer", cid)
    return cid


def _rights(uow: Any) -> dict[str, bool]:
    return {k.replace(".", "_"): uow.can(k) for k in ("credit.profile.write", "credit.hold", "credit.release")}


def section(uow: Any, customer: Any, profile: dict[str, Any]) -> ConsoleSection:
    """Status, limit, exposure, grade (from the profile's "Credit" section), active releases, and
    the hold / release forms for those who hold the permission."""
    fields = profile["sections"].get("Credit") or {}
    now = uow.now()
    active = [r for r in services.releases(uow, customer.id) if r.ended_at is None and r.expires_at > now]
    return ConsoleSection(title="Credit", template="credit/section.html", replaces="Credit", order=20, context={
        "c": {"id": customer.id, "archived": customer.archived}, "fields": fields,
        "tables": profile["section_tables"].get("Credit", []), "releases": active, "rights": _rights(uow),
        "forms": {}, "raw": {}})


def customer_page(view: View, form: str | None = None, raw: dict[str, str] | None = None,
                  errors: dict[str, str] | None = None, status: int = 422) -> Response:
    """The credit page of one customer; a refused form comes back here with its input and errors."""
    cid = _cid(view)
    with view.unit() as uow:
        customer = uow.customers.visible(cid)
        data = reports.profile_data(uow, cid)
        block = services.profile_section(uow, customer)
        rights = _rights(uow)
        name, archived = customer.name, customer.archived
    p = data["profile"] or {}
    current: dict[str, str] = {"limit": "" if p.get("limit_amount") is None else str(p["limit_amount"]), "currency": p.get("currency") or "",
               "payment_terms_days": "" if p.get("payment_terms_days") is None else str(p["payment_terms_days"]),
               "status": str(p["status"]) if p.get("status") in STATUSES else "", "reason": "", "last_review": ""}
    forms: dict[str, tuple[dict[str, str], dict[str, str]]] = {"profile": (current, {}), "hold": ({}, {}),
                                                               "release": ({"days": "7"}, {})}
    if form is not None:
        forms[form] = (raw or {}, errors or {})
    return view.render("credit/customer.html", status=status if errors else 200, c={"id": cid, "name": name, "archived": archived},
                       data=data, fields=block.fields if block else {}, tables=block.tables if block else [],
                       rights=rights, forms=forms, statuses=[(s, view._(s)) for s in STATUSES])


def _failed(view: View, e: CRMError) -> dict[str, str]:
    if isinstance(e, InvalidInput):
        return service_errors(e)
    if isinstance(e, Vetoed):
        return {"_": view._("Refused by %(plugin)s: %(reason)s", plugin=e.plugin, reason=e.reason)}
    return {"_": str(e)}


def _write(view: View, form: str, raw: dict[str, str], action: Any) -> Response:
    """Run ``action(uow, cid)`` (it returns the message for the next page); a refusal is shown on
    the credit page next to the form, the input kept."""
    cid = _cid(view)
    try:
        with view.unit(write=True) as uow:
            uow.customers.visible(cid)  # an invisible customer is not found, as in the API
            done = action(uow, cid)
    except NotFound:
        raise
    except CRMError as e:
        return customer_page(view, form, raw, _failed(view, e), status=status_for(e))
    back = view.field("back")
    return view.redirect(f"/customers/{cid}" if back == "customer" else f"/credit/customers/{cid}", flash=done)


def set_profile(view: View) -> Response:
    raw = values(view.form, PROFILE_FIELDS)
    raw["currency"] = raw["currency"].upper()
    data, errors = bind(ProfileUpdate, raw)
    if data is None:
        return customer_page(view, "profile", raw, errors)
    return _write(view, "profile", raw, lambda uow, cid: services.set_profile(uow, cid, data)
                  and view._("Credit profile saved."))


def hold(view: View) -> Response:
    raw = values(view.form, HOLD_FIELDS)
    data, errors = bind(HoldIn, raw)
    if data is None:
        return customer_page(view, "hold", raw, errors)
    return _write(view, "hold", raw, lambda uow, cid: services.hold(uow, cid, data.reason)
                  and view._("The customer is on credit hold."))


def release(view: View) -> Response:
    raw = values(view.form, RELEASE_FIELDS)
    data, errors = bind(ReleaseRequest, raw)
    if data is None:
        return customer_page(view, "release", raw, errors)
    return _write(view, "release", raw, lambda uow, cid: view._(
        "Released until %(date)s.", date=view.fmt.date(services.release(uow, cid, data).expires_at)))


def ageing(view: View) -> Response:
    errors: dict[str, str] = {}
    raw = view.arg("as_of")
    day = services.today()
    if raw:
        try:
            day = dt.date.fromisoformat(raw)
        except ValueError:
            errors["as_of"] = view._("Give a date as YYYY-MM-DD.")
    with view.unit() as uow:
        report = reports.ageing(uow, day)
        rows = sorted(report["customers"], key=lambda r: (-r["open"], r["customer_id"]))[:SHOWN]
        ids = [r["customer_id"] for r in rows]
        names = dict(uow.session.execute(select(Customer.id, Customer.name).where(Customer.id.in_(ids))).all()) if ids else {}
    return view.render("credit/ageing.html", status=422 if errors else 200, report=report, rows=rows, names=names,
                       errors=errors, as_of=raw if errors else day.isoformat(), buckets=("current", "1-30", "31-60", "61-90", "over_90"),
                       more=len(report["customers"]) - len(rows))


ROUTES: list[tuple[str, Any, tuple[str, ...]]] = [
    ("/credit/ageing", ageing, ("GET",)),
    ("/credit/customers/{cid:int}", customer_page, ("GET",)),
    ("/credit/customers/{cid:int}/profile", set_profile, ("POST",)),
    ("/credit/customers/{cid:int}/hold", hold, ("POST",)),
    ("/credit/customers/{cid:int}/release", release, ("POST",)),
]
