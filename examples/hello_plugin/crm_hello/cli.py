"""`crm hello ...`: the plugin's command group (registered by plugin.crm_register_commands)."""
from __future__ import annotations

import click
from sqlalchemy import select

from crm_hello.models import Greeting
from crmcore.sdk import AppContext, CRMGroup, pass_app, resolve_customer


@click.group("hello", cls=CRMGroup)
def hello() -> None:
    """Greetings of the hello plugin."""


@hello.command("show")
@click.argument("customer_key", metavar="CUSTOMER")
@pass_app
def show(app: AppContext, customer_key: str) -> None:
    """The greetings of CUSTOMER (an id or an external reference)."""
    with app.crm().unit_of_work(app.actor) as uow:
        customer = resolve_customer(uow, customer_key)
        texts = uow.session.scalars(select(Greeting.text).where(Greeting.customer_id == customer.id)
                                    .order_by(Greeting.id)).all()
    for text in texts:
        click.echo(text)
