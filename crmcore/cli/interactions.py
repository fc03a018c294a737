"""`crm interaction log|list`."""
from __future__ import annotations

from typing import Any

import click

from crmcore.cli.context import AppContext, CRMGroup, pass_app
from crmcore.cli.customers import choice, resolve_customer
from crmcore.cli.output import echo, emit_json, table, validate
from crmcore.cli.params import CUSTOMER, DATETIME, USERNAME
from crmcore.enums import Channel, Direction
from crmcore.schemas import InteractionCreate, InteractionRead


def register(cli: click.Group) -> None:
    cli.add_command(interaction)


@click.group(cls=CRMGroup)
def interaction() -> None:
    """Touchpoints: the customer's timeline."""


@interaction.command("log")
@click.argument("customer_key", metavar="CUSTOMER", type=CUSTOMER)
@click.option("--channel", required=True, type=choice(Channel))
@click.option("--subject", required=True)
@click.option("--direction", type=choice(Direction))
@click.option("--kind", help="a word of crm.toml [vocabularies] interaction_kinds (default: other)")
@click.option("--notes")
@click.option("--at", "occurred_at", metavar="DATETIME", type=DATETIME, help="ISO date/time, UTC unless an offset is given (default: now)")
@click.option("--by", "handled_by", metavar="USERNAME", type=USERNAME)
@click.option("--outcome")
@click.option("--satisfaction", type=int, help="1 (poor) to 5 (excellent)")
@click.option("--ref", "external_ref", help="external reference: logging the same reference again is a no-op")
@click.option("--contact", metavar="CONTACT", help="the person spoken with: id or external reference of one of the customer's contacts")
@click.option("--json", "as_json", is_flag=True, help="print the interaction and whether it was new as JSON")
@pass_app
def interaction_log(app: AppContext, customer_key: str, contact: str | None, as_json: bool, **opts: Any) -> None:
    """Record a touchpoint with a customer."""
    data = validate(InteractionCreate, **opts)
    with app.crm().unit_of_work(app.actor) as uow:
        x, created = uow.interactions.log_once(resolve_customer(uow, customer_key).id, data, contact=contact)
        read = InteractionRead.model_validate(x)
        out = {"created": created, "interaction": read.model_dump()}
    if as_json:  # only once committed
        emit_json(out)
        return
    xid = read.id
    echo(f"logged interaction {xid}" if created else f"already logged (no change): interaction {xid}")


@interaction.command("list")
@click.option("--customer", "customer_key", metavar="CUSTOMER", type=CUSTOMER)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100000))
@click.option("--json", "as_json", is_flag=True)
@pass_app
def interaction_list(app: AppContext, customer_key: str | None, limit: int, as_json: bool) -> None:
    """Latest interactions, newest first."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        cid = resolve_customer(uow, customer_key).id if customer_key else None
        rows = [InteractionRead.model_validate(x).model_dump()
                for x in uow.interactions.list(cid, limit)]
    if as_json:
        emit_json(rows)
    else:
        table("interactions", ["id", "customer", "when", "channel", "kind", "subject", "sat."],
              [[r["id"], r["customer_id"], r["occurred_at"].strftime("%Y-%m-%d %H:%M"), r["channel"], r["kind"], r["subject"],
                r["satisfaction"]] for r in rows])
