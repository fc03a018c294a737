"""``crm marketing contact-consent …``: consent per person (contact) and channel.

Added to the ``marketing`` group from :mod:`crm_marketing.plugin` (not from ``cli.py``), so the
person-level commands live next to the person-level services in :mod:`crm_marketing.people`.
"""
from __future__ import annotations

import click

from crm_marketing import people
from crm_marketing.schemas import CHANNELS, ConsentSet
from crmcore.sdk import AppContext, CRMGroup, emit_json, pass_app, table, validate


@click.group("contact-consent", cls=CRMGroup)
def contact_consent() -> None:
    """Per contact (person) and channel: opt-in, opt-out, unsubscribed; a person's withdrawal wins."""


@contact_consent.command("set")
@click.argument("contact")
@click.argument("channel", type=click.Choice(CHANNELS))
@click.argument("status", type=click.Choice(["opt_in", "opt_out", "unsubscribed"]))
@click.option("--source", default="cli", show_default=True, help="Where the statement came from (form, call, ...).")
@click.option("--at", help="When it was given (ISO date/time; default now).")
@pass_app
def consent_set(app: AppContext, contact: str, channel: str, status: str, source: str, at: str | None) -> None:
    """Record a person's consent for a channel (CONTACT: external reference or #id)."""
    data = validate(ConsentSet, channel=channel, status=status, source=source, at=at)
    with app.crm().unit_of_work(app.actor) as uow:
        c = people.resolve_contact(uow, contact)
        cid = c.id
        people.set_contact_consent(uow, cid, data)
    click.echo(f"contact {cid}: {channel} consent is {status}")


@contact_consent.command("unsubscribe")
@click.argument("contact")
@click.argument("channel", type=click.Choice(CHANNELS))
@click.option("--source", default="unsubscribe", show_default=True)
@pass_app
def consent_unsubscribe(app: AppContext, contact: str, channel: str, source: str) -> None:
    """The person unsubscribes from a channel (their company's consent stays as it is)."""
    data = validate(ConsentSet, channel=channel, status="unsubscribed", source=source)
    with app.crm().unit_of_work(app.actor) as uow:
        cid = people.resolve_contact(uow, contact).id
        people.set_contact_consent(uow, cid, data)
    click.echo(f"contact {cid}: unsubscribed from {channel}")


@contact_consent.command("show")
@click.argument("contact")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@pass_app
def consent_show(app: AppContext, contact: str, as_json: bool) -> None:
    """A person's own consent per channel, and the effective answer for each channel."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        c = people.resolve_contact(uow, contact)
        cid, name = c.id, c.name
        own = {x.channel: x for x in people.contact_consents(uow, cid)}
        rows = []
        for ch in CHANNELS:
            v = people.effective_consent(uow, cid, ch)
            x = own.get(ch)
            rows.append({"channel": ch, "status": x and x.status, "at": x and x.at, "source": x and x.source,
                         "allowed": v.allowed, "reason": v.reason})
    if as_json:
        emit_json({"contact_id": cid, "consent": rows})
        return
    table(f"Consent of {name}", ["channel", "status", "at", "source", "allowed", "reason"],
          [list(r.values()) for r in rows])


def register(marketing: click.Group) -> None:
    """Attach the person-level commands to ``crm marketing`` (idempotent)."""
    if "contact-consent" not in marketing.commands:
        marketing.add_command(contact_consent)
