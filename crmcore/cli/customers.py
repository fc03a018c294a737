"""`crm customer …` and `crm contact …`."""
from __future__ import annotations

from typing import Any

import click

from crmcore.cli.context import AppContext, CRMGroup, pass_app
from crmcore.cli.output import emit_json, fields, table, validate
from crmcore.enums import ContactRole, CustomerKind, LifecycleStage
from crmcore.errors import InvalidInput, NotFound
from crmcore.models import Customer
from crmcore.schemas import (
    AccountRead,
    ContactCreate,
    ContactRead,
    ContactUpdate,
    CustomerCreate,
    CustomerRead,
    CustomerUpdate,
    InteractionRead,
)
from crmcore.uow import UnitOfWork


def register(cli: click.Group) -> None:
    cli.add_command(customer)
    cli.add_command(contact)


def resolve_customer(uow: UnitOfWork, key: str) -> Customer:
    """A customer by external reference or, failing that, by numeric id.

    The reference wins, so a customer whose reference is "2" is never confused with id 2;
    ``#2`` always means the id.
    """
    if key.startswith("#") and key[1:].isascii() and key[1:].isdigit():
        return uow.customers.get(int(key[1:]))
    c = uow.customers.get_by_ref(key)
    if c is not None:
        return c
    if key.isascii() and key.isdigit():
        return uow.customers.get(int(key))
    raise NotFound("customer", repr(key))


def parse_attrs(pairs: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for p in pairs:
        if "=" not in p:
            raise InvalidInput(f"--attr takes key=value, got {p!r}")
        k, v = p.split("=", 1)
        out[k.strip()] = v
    return out


def choice(enum: type) -> click.Choice:
    return click.Choice([m.value for m in enum])


_customer_options = [
    click.option("--kind", type=choice(CustomerKind)),
    click.option("--email"),
    click.option("--phone"),
    click.option("--country", help="ISO 3166 alpha-2 code"),
    click.option("--region"),
    click.option("--industry"),
    click.option("--stage", "lifecycle_stage", type=choice(LifecycleStage)),
    click.option("--owner", help="username of the owning user"),
    click.option("--tag", "tags", multiple=True),
    click.option("--ref", "external_ref", help="external reference (unique)"),
    click.option("--attr", "attrs", multiple=True, metavar="KEY=VALUE", help="custom attribute"),
]


def customer_options(f: Any) -> Any:
    for opt in reversed(_customer_options):
        f = opt(f)
    return f


@click.group(cls=CRMGroup)
def customer() -> None:
    """Customers: add, list, show (the 360° view), update, archive, merge."""


@customer.command("add")
@click.argument("name")
@customer_options
@click.option("--json", "as_json", is_flag=True)
@pass_app
def customer_add(app: AppContext, name: str, attrs: tuple[str, ...], tags: tuple[str, ...], as_json: bool, **opts: Any) -> None:
    """Add a customer."""
    data = validate(CustomerCreate, name=name, tags=list(tags) or None, attributes=parse_attrs(attrs) or None, **opts)
    with app.crm().unit_of_work(app.actor) as uow:
        c = uow.customers.create(data)
        out = CustomerRead.model_validate(c).model_dump()
    if as_json:
        emit_json(out)
    else:
        click.echo(f"added customer {out['id']}: {out['name']}")


@customer.command("list")
@click.option("--search", help="part of the name or email, or an external reference")
@click.option("--stage", type=choice(LifecycleStage))
@click.option("--tag")
@click.option("--archived", is_flag=True, help="include archived customers")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100000))
@click.option("--offset", default=0, type=click.IntRange(0))
@click.option("--json", "as_json", is_flag=True)
@pass_app
def customer_list(app: AppContext, search: str | None, stage: str | None, tag: str | None, archived: bool,
                  limit: int, offset: int, as_json: bool) -> None:
    """List customers."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        rows = [CustomerRead.model_validate(c).model_dump() for c in uow.customers.list(
            search=search, stage=LifecycleStage(stage) if stage else None, tag=tag, include_archived=archived,
            limit=limit, offset=offset)]
    if as_json:
        emit_json(rows)
    else:
        table("customers", ["id", "name", "kind", "stage", "email", "country", "ref"],
              [[r["id"], r["name"], r["kind"], r["lifecycle_stage"], r["email"], r["country"], r["external_ref"]] for r in rows])


def profile(uow: UnitOfWork, c: Customer, interactions: int = 10) -> dict[str, Any]:
    """The 360° view as data: customer, contacts, latest interactions, accounts, plugin sections."""
    return {
        "customer": CustomerRead.model_validate(c).model_dump(),
        "contacts": [ContactRead.model_validate(x).model_dump() for x in uow.contacts.list(c.id)],
        "interactions": [InteractionRead.model_validate(x).model_dump() for x in uow.interactions.list(c.id, limit=interactions)],
        "accounts": [AccountRead.model_validate(x).model_dump() for x in uow.accounts.list(c.id)],
        "sections": {s.title: s.fields for _, s in uow.hooks.profile_sections(uow, c)},
    }


@customer.command("show")
@click.argument("customer_key", metavar="CUSTOMER")
@click.option("--interactions", default=10, show_default=True, type=click.IntRange(0, 1000))
@click.option("--json", "as_json", is_flag=True)
@pass_app
def customer_show(app: AppContext, customer_key: str, interactions: int, as_json: bool) -> None:
    """The customer's 360° view (CUSTOMER is an id or an external reference)."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        p = profile(uow, resolve_customer(uow, customer_key), interactions)
    if as_json:
        emit_json(p)
        return
    c = p["customer"]
    fields(f"Customer {c['id']}: {c['name']}", {k: v for k, v in c.items() if k not in ("id", "name")})
    if p["contacts"]:
        table("Contacts", ["id", "name", "role", "title", "email", "phone"],
              [[x["id"], x["name"], x["role"], x["title"], x["email"], x["phone"]] for x in p["contacts"]])
    table("Latest interactions", ["when", "channel", "dir", "kind", "subject", "outcome", "sat."],
          [[x["occurred_at"].strftime("%Y-%m-%d %H:%M"), x["channel"], x["direction"], x["kind"], x["subject"], x["outcome"],
            x["satisfaction"]] for x in p["interactions"]])
    table("Accounts", ["id", "currency", "status", "terms", "balance", "default"],
          [[x["id"], x["currency"], x["status"], x["payment_terms_days"], x["balance"], "yes" if x["is_default"] else ""] for x in p["accounts"]])
    for title, data in p["sections"].items():
        fields(title, data)


@customer.command("update")
@click.argument("customer_key", metavar="CUSTOMER")
@click.option("--name")
@customer_options
@click.option("--version", type=int, help="fail if the stored version differs (optimistic locking)")
@pass_app
def customer_update(app: AppContext, customer_key: str, attrs: tuple[str, ...], tags: tuple[str, ...], **opts: Any) -> None:
    """Change some fields of a customer."""
    given = {k: v for k, v in opts.items() if v is not None}
    if tags:
        given["tags"] = list(tags)
    if attrs:
        given["attributes"] = parse_attrs(attrs)
    data = validate(CustomerUpdate, **given)
    with app.crm().unit_of_work(app.actor) as uow:
        c = uow.customers.update(resolve_customer(uow, customer_key).id, data)
        click.echo(f"updated customer {c.id} (version {c.version})")


@customer.command("archive")
@click.argument("customer_key", metavar="CUSTOMER")
@pass_app
def customer_archive(app: AppContext, customer_key: str) -> None:
    """Archive (soft-delete) a customer; its history is kept."""
    with app.crm().unit_of_work(app.actor) as uow:
        c = uow.customers.archive(resolve_customer(uow, customer_key).id)
        click.echo(f"archived customer {c.id}")


@customer.command("merge")
@click.argument("source_key", metavar="SOURCE")
@click.option("--into", "target_key", required=True, metavar="TARGET", help="the customer that keeps everything")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def customer_merge(app: AppContext, source_key: str, target_key: str, as_json: bool) -> None:
    """Merge SOURCE into TARGET: every related row moves to TARGET; SOURCE is archived."""
    with app.crm().unit_of_work(app.actor) as uow:
        source, target = resolve_customer(uow, source_key), resolve_customer(uow, target_key)
        counts = uow.customers.merge(source.id, target.id)
        sid, tid = source.id, target.id
    if as_json:
        emit_json({"source": sid, "target": tid, "moved": counts})
    else:
        moved = ", ".join(f"{n} {t}" for t, n in counts.items())
        click.echo(f"merged customer {sid} into {tid}: moved {moved}")


@click.group(cls=CRMGroup)
def contact() -> None:
    """People at organization customers and their buying roles."""


@contact.command("add")
@click.argument("customer_key", metavar="CUSTOMER")
@click.argument("name")
@click.option("--role", type=choice(ContactRole))
@click.option("--title")
@click.option("--email")
@click.option("--phone")
@click.option("--ref", "external_ref")
@pass_app
def contact_add(app: AppContext, customer_key: str, name: str, **opts: Any) -> None:
    """Add a contact to an organization customer."""
    data = validate(ContactCreate, name=name, **opts)
    with app.crm().unit_of_work(app.actor) as uow:
        c = resolve_customer(uow, customer_key)
        x = uow.contacts.add(c.id, data)
        click.echo(f"added contact {x.id}: {x.name}")


@contact.command("list")
@click.argument("customer_key", metavar="CUSTOMER")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def contact_list(app: AppContext, customer_key: str, as_json: bool) -> None:
    """List a customer's contacts."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        rows = [ContactRead.model_validate(x).model_dump() for x in uow.contacts.list(resolve_customer(uow, customer_key).id)]
    if as_json:
        emit_json(rows)
    else:
        table("contacts", ["id", "name", "role", "title", "email", "phone"],
              [[x["id"], x["name"], x["role"], x["title"], x["email"], x["phone"]] for x in rows])


@contact.command("update")
@click.argument("contact_id", type=int)
@click.option("--name")
@click.option("--role", type=choice(ContactRole))
@click.option("--title")
@click.option("--email")
@click.option("--phone")
@pass_app
def contact_update(app: AppContext, contact_id: int, **opts: Any) -> None:
    """Change a contact."""
    data = validate(ContactUpdate, **opts)
    with app.crm().unit_of_work(app.actor) as uow:
        uow.contacts.update(contact_id, data)
        click.echo(f"updated contact {contact_id}")


@contact.command("remove")
@click.argument("contact_id", type=int)
@pass_app
def contact_remove(app: AppContext, contact_id: int) -> None:
    """Remove a contact."""
    with app.crm().unit_of_work(app.actor) as uow:
        uow.contacts.remove(contact_id)
        click.echo(f"removed contact {contact_id}")
