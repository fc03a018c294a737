"""`crm warranty ...`: thin commands over :mod:`crm_warranty.claims`."""
from __future__ import annotations

import click

from crm_warranty import claims
from crmcore.sdk import CUSTOMER, ID, AppContext, CRMGroup, emit_json, pass_app, table, validate


@click.group(cls=CRMGroup)
def warranty() -> None:
    """Warranty claims: open, approve or reject, close, list."""


@warranty.command("open")
@click.argument("customer", type=CUSTOMER)
@click.option("--product", required=True)
@click.option("--sold-on", "sold_on", required=True, help="date of the sale, YYYY-MM-DD")
@click.option("--amount")
@click.option("--ref", "external_ref")
@pass_app
def open_(app: AppContext, customer: str, **opts: str | None) -> None:
    """Record a warranty claim for CUSTOMER."""
    data = validate(claims.ClaimIn, **opts)
    with app.crm().unit_of_work(app.actor) as uow:
        claim = claims.as_dict(claims.open_claim(uow, customer, data))
    click.echo(f"claim {claim['id']} opened for customer {claim['customer_id']}")


@warranty.command("move")
@click.argument("claim_id", type=ID)
@click.argument("status", type=click.Choice(["approved", "rejected", "closed"]))
@click.option("--reason")
@pass_app
def move_(app: AppContext, claim_id: int, status: str, reason: str | None) -> None:
    """Move a claim: approve or reject an open one (warranty.decide), close a decided one."""
    with app.crm().unit_of_work(app.actor) as uow:
        claims.decide(uow, claim_id, status, reason)
    click.echo(f"claim {claim_id} is {status}")


@warranty.command("list")
@click.argument("customer", type=CUSTOMER)
@click.option("--json", "as_json", is_flag=True)
@pass_app
def list_(app: AppContext, customer: str, as_json: bool) -> None:
    """CUSTOMER's claims."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        rows = [claims.as_dict(c) for c in claims.claims_of(uow, customer)]
    if as_json:
        emit_json(rows)
    else:
        table("warranty claims", ["id", "product", "sold on", "status", "amount"],
              [[r["id"], r["product"], r["sold_on"], r["status"], r["amount"]] for r in rows])
