"""``crm credit review due`` and ``crm credit warnings``: the credit reviews to do, the documents
warn mode let through. Thin: the reads (visibility included) are in :mod:`crm_credit.control`."""
from __future__ import annotations

import datetime as dt
from typing import Any

import click

from crm_credit import control, services
from crmcore.sdk import AppContext, CRMGroup, emit_json, pass_app, resolve_customer, table


def _date(value: str | None) -> dt.date | None:
    from crmcore.errors import InvalidInput

    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"invalid input: as-of: expected a date YYYY-MM-DD, got {value!r}") from None


@click.group(cls=CRMGroup)
def review() -> None:
    """Credit reviews: which customers' credit files are due for review."""


@review.command("due")
@click.option("--as-of", "as_of", help="due on or before this date (default today)")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_app
def review_due(app: AppContext, as_of: str | None, as_json: bool) -> None:
    """Profiles whose next review date has come, and those never reviewed, most overdue first."""
    day = _date(as_of) or services.today()
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        rows = control.review_due(uow, day)
    if as_json:
        emit_json({"as_of": day, "due": [r.__dict__ for r in rows]})
        return
    table(f"Credit reviews due on {day}: {len(rows)}", ["customer", "name", "status", "last review", "next review", "days overdue"],
          [[r.customer_id, r.name, r.status, r.last_review or "never", r.next_review or "–",
            "never reviewed" if r.days_overdue is None else r.days_overdue] for r in rows])


@click.command("warnings")
@click.option("--customer", "customer_key", help="only this customer's")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_app
def warnings_cmd(app: AppContext, customer_key: str | None, as_json: bool) -> None:
    """Documents that broke a credit rule and passed in warn mode: the figures and who passed them."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        cid = resolve_customer(uow, customer_key).id if customer_key else None
        rows: list[dict[str, Any]] = [{"id": w.id, "customer_id": w.customer_id, "reference": w.reference,
                                       "amount": w.amount, "currency": w.currency, "mode": w.mode_source,
                                       "passed_by": w.actor, "at": w.at, "message": w.message}
                                      for w in control.warnings(uow, cid)]
    if as_json:
        emit_json(rows)
        return
    table(f"Credit warnings: {len(rows)}", ["at", "customer", "document", "amount", "passed by", "mode", "warning"],
          [[f"{r['at']:%Y-%m-%d %H:%M}", r["customer_id"], r["reference"], f"{r['amount']:,.2f} {r['currency']}",
            r["passed_by"], r["mode"], r["message"]] for r in rows])
