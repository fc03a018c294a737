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


@click.command("address")
@click.argument("campaign")
@click.option("--to-roles", "to_roles", metavar="ROLES",
              help="Comma-separated contact roles, e.g. decider,buyer (leave out to address the company again).")
@pass_app
def campaign_address(app: AppContext, campaign: str, to_roles: str | None) -> None:
    """Address a draft campaign to the contacts with these buying-centre roles (their e-mail, their consent)."""
    from crm_marketing import people_campaigns, services

    with app.crm().unit_of_work(app.actor) as uow:
        c = people_campaigns.address_to_roles(uow, services.get_campaign(uow, campaign), to_roles)
        name, roles = c.name, c.to_roles
    click.echo(f"campaign {name!r} is addressed to " + (f"contacts with role {roles.replace(',', ', ')}" if roles
                                                        else "the company"))


@click.command("audience")
@click.argument("campaign")
@click.option("--group", type=click.Choice(["contact", "control", "suppressed"]), help="Only this group's rows.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@pass_app
def campaign_audience(app: AppContext, campaign: str, group: str | None, limit: int, offset: int, as_json: bool) -> None:
    """Who a launched campaign reached: contacted, control, suppressed with the reason (per person for a role campaign)."""
    from crm_marketing.audience import campaign_audience as read

    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        a = read(uow, campaign, group, limit, offset)
    if as_json:
        emit_json(a)
        return
    if not a["launched"]:
        click.echo(f"campaign {a['campaign']!r} is {a['status']}; its audience is drawn at launch")
        return
    counts = ", ".join(f"{n:,} {g}" for g, n in a["counts"].items())
    reasons = "; ".join(f"{r}: {n:,}" for r, n in a["suppressed_reasons"].items())
    table(f"Audience of {a['campaign']} ({counts})" + (f" - suppressed: {reasons}" if reasons else ""),
          ["customer", "contact", "group", "reason", "status", "address"],
          [[r["customer_ref"], r["contact_ref"], r["grp"], r["reason"], r["status"], r["address"]] for r in a["rows"]])


def register(marketing: click.Group) -> None:
    """Attach the person-level commands to ``crm marketing`` and its ``campaign`` group (idempotent)."""
    if "contact-consent" not in marketing.commands:
        marketing.add_command(contact_consent)
    campaign = marketing.commands.get("campaign")
    if isinstance(campaign, click.Group):
        for command in (campaign_address, campaign_audience):
            if command.name not in campaign.commands:
                campaign.add_command(command)
