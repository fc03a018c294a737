"""``crm sales referral set``: who referred a customer (leads take ``--referred-by`` themselves)."""
from __future__ import annotations

import click

from crm_sales_automation import services
from crm_sales_automation.cli._common import _json
from crmcore.errors import InvalidInput
from crmcore.sdk import AppContext, CRMGroup, emit_json, jsonable, pass_app, resolve_customer


@click.group(cls=CRMGroup)
def referral() -> None:
    """"Referred by": the customer who brought a customer (shown on `crm customer show`)."""


@referral.command("set")
@click.argument("customer_key", metavar="CUSTOMER")
@click.option("--by", "referrer_key", metavar="REFERRER", help="the referring customer (id or reference)")
@click.option("--clear", is_flag=True, help="remove the customer's referral")
@_json
@pass_app
def referral_set(app: AppContext, customer_key: str, referrer_key: str | None, clear: bool, as_json: bool) -> None:
    """Record that REFERRER referred CUSTOMER (or --clear it)."""
    if clear == (referrer_key is not None):
        raise InvalidInput("invalid input: give either --by REFERRER or --clear")
    with app.crm().unit_of_work(app.actor) as uow:
        customer = resolve_customer(uow, customer_key)
        referrer = resolve_customer(uow, referrer_key).id if referrer_key is not None else None
        services.set_referral(uow, customer.id, referrer)
        out = services.referral_detail(uow, customer.id)
    if as_json:
        emit_json(jsonable(out))
    elif out["referred_by"] is None:
        click.echo(f"customer {out['customer_id']}: no referral")
    else:
        by = out["referred_by"]
        click.echo(f"customer {out['customer_id']} referred by customer {by['customer_id']} ({by['name']})")
