"""`crm customer …` and `crm contact …`."""
from __future__ import annotations

from enum import Enum
from typing import Any

import click

from crmcore.cli.context import AppContext, CRMGroup, pass_app
from crmcore.cli.output import echo, emit_json, fields, table, validate
from crmcore.cli.params import CUSTOMER, ID, SEARCH, TEXT, VERSION
from crmcore.enums import CustomerKind, LifecycleStage
from crmcore.errors import InvalidInput
from crmcore.limits import MAX_ID
from crmcore.models import Customer
from crmcore.schemas import ContactCreate, ContactRead, ContactUpdate, CustomerCreate, CustomerQuery, CustomerRead, CustomerUpdate
from crmcore.schemas.customer import MAX_PAGE
from crmcore.uow import UnitOfWork


def register(cli: click.Group) -> None:
    from crmcore.cli import duplicates

    duplicates.register(customer)
    cli.add_command(customer)
    cli.add_command(contact)


def resolve_customer(uow: UnitOfWork, key: str) -> Customer:
    """A customer by external reference or ``#id`` (the reference wins), if the actor may see it.

    The rule lives in :meth:`crmcore.services.customers.CustomerService.resolve`; kept here for
    the commands (and plugins) that import it.
    """
    return uow.customers.resolve(key)


def parse_attrs(pairs: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for p in pairs:
        if "=" not in p:
            raise InvalidInput(f"--attr takes key=value, got {p!r}")
        k, v = p.split("=", 1)
        out[k.strip()] = v
    return out


def choice(enum: type[Enum]) -> click.Choice:
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
@click.option("--force", is_flag=True, help="create it even if it looks like a duplicate of an existing customer")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def customer_add(app: AppContext, name: str, attrs: tuple[str, ...], tags: tuple[str, ...], force: bool, as_json: bool,
                 **opts: Any) -> None:
    """Add a customer (a likely duplicate of an existing one is refused unless --force)."""
    data = validate(CustomerCreate, name=name, tags=list(tags) or None, attributes=parse_attrs(attrs) or None, **opts)
    with app.crm().unit_of_work(app.actor) as uow:
        c = uow.customers.create(data, force=force)
        out = CustomerRead.model_validate(c).model_dump()
    if as_json:
        emit_json(out)
    else:
        echo(f"added customer {out['id']}: {out['name']}")


@customer.command("list")
@click.option("--search", type=SEARCH, help="part of the name, email or external reference (case-insensitive)")
@click.option("--stage", type=choice(LifecycleStage))
@click.option("--tag", type=TEXT)
@click.option("--owner", type=TEXT, help="username of the owning user")
@click.option("--country", type=TEXT, help="ISO 3166 alpha-2 code")
@click.option("--archived", is_flag=True, help="include archived customers")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, MAX_PAGE))
@click.option("--after", default=0, type=click.IntRange(0, MAX_ID), help="list ids after this one (the next page)")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def customer_list(app: AppContext, as_json: bool, **opts: Any) -> None:
    """List the customers you may see, by id; the next page starts ``--after`` the last id shown."""
    query = validate(CustomerQuery, **{k: v for k, v in opts.items() if v is not None})
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        page = uow.customers.search(query)
        rows = [CustomerRead.model_validate(c).model_dump() for c in page.items]
    if as_json:
        emit_json(rows)
    else:
        table("customers", ["id", "name", "kind", "stage", "email", "country", "ref"],
              [[r["id"], r["name"], r["kind"], r["lifecycle_stage"], r["email"], r["country"], r["external_ref"]] for r in rows])
    if page.next_after is not None:
        click.echo(f"more: --after {page.next_after}", err=True)


@customer.command("show")
@click.argument("customer_key", metavar="CUSTOMER", type=CUSTOMER)
@click.option("--interactions", default=10, show_default=True, type=click.IntRange(0, 1000))
@click.option("--json", "as_json", is_flag=True)
@pass_app
def customer_show(app: AppContext, customer_key: str, interactions: int, as_json: bool) -> None:
    """The customer's 360° view (CUSTOMER is an id or an external reference)."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        p = uow.profiles.get(customer_key, interactions=interactions)
    if as_json:
        emit_json(p)
        return
    c = p["customer"]
    fields(f"Customer {c['id']}: {c['name']}", {k: v for k, v in c.items() if k not in ("id", "name")})
    if p["contacts"]:
        table("Contacts", ["id", "name", "role", "title", "email", "phone"],
              [[x["id"], x["name"], x["role"], x["title"], x["email"], x["phone"]] for x in p["contacts"]])
    table("Timeline", ["when", "what", "summary", "reference", "from"],
          [[x["at"][:16].replace("T", " "), x["kind"], x["summary"], x["reference"], x["source"]] for x in p["timeline"]])
    table("Accounts", ["id", "currency", "status", "terms", "balance", "default"],
          [[x["id"], x["currency"], x["status"], x["payment_terms_days"], x["balance"], "yes" if x["is_default"] else ""] for x in p["accounts"]])
    for title, data in p["sections"].items():
        if data or title not in p["section_tables"]:
            fields(title, data)
        for t in p["section_tables"].get(title, []):
            table(f"{title}: {t['title']}", t["columns"], t["rows"])


@customer.command("update")
@click.argument("customer_key", metavar="CUSTOMER", type=CUSTOMER)
@click.option("--name")
@customer_options
@click.option("--version", type=VERSION, help="fail if the stored version differs (optimistic locking)")
@click.option("--json", "as_json", is_flag=True, help="print the updated customer as JSON")
@pass_app
def customer_update(app: AppContext, customer_key: str, attrs: tuple[str, ...], tags: tuple[str, ...], as_json: bool,
                    **opts: Any) -> None:
    """Change some fields of a customer."""
    given = {k: v for k, v in opts.items() if v is not None}
    if tags:
        given["tags"] = list(tags)
    if attrs:
        given["attributes"] = parse_attrs(attrs)
    data = validate(CustomerUpdate, **given)
    with app.crm().unit_of_work(app.actor) as uow:
        out = CustomerRead.model_validate(uow.customers.update(resolve_customer(uow, customer_key).id, data)).model_dump()
    if as_json:  # only once committed
        emit_json(out)
        return
    echo(f"updated customer {out['id']} (version {out['version']})")


@customer.command("archive")
@click.argument("customer_key", metavar="CUSTOMER", type=CUSTOMER)
@click.option("--json", "as_json", is_flag=True, help="print the archived customer as JSON")
@pass_app
def customer_archive(app: AppContext, customer_key: str, as_json: bool) -> None:
    """Archive (soft-delete) a customer; its history is kept."""
    with app.crm().unit_of_work(app.actor) as uow:
        out = CustomerRead.model_validate(uow.customers.archive(resolve_customer(uow, customer_key).id)).model_dump()
    if as_json:
        emit_json(out)
        return
    echo(f"archived customer {out['id']}")


@customer.command("merge")
@click.argument("source_key", metavar="SOURCE", type=CUSTOMER)
@click.option("--into", "target_key", required=True, metavar="TARGET", type=CUSTOMER, help="the customer that keeps everything")
@click.option("--dry-run", is_flag=True, help="show what would move and which value each field keeps; write nothing")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def customer_merge(app: AppContext, source_key: str, target_key: str, dry_run: bool, as_json: bool) -> None:
    """Merge SOURCE into TARGET: every related row moves to TARGET; SOURCE is archived.

    TARGET keeps its own values; a field it lacks is filled from SOURCE; tags are joined."""
    if dry_run:
        from crmcore.services.merge_preview import preview_merge

        with app.crm().unit_of_work(app.actor) as uow:
            plan = preview_merge(uow, source_key, target_key)
        if as_json:
            emit_json(plan)
            return
        moved = ", ".join(f"{n} {t}" for t, n in plan["moved"].items())
        echo(f"dry run: merging customer {plan['source']} into {plan['target']} would move {moved}; nothing was written")
        if plan["fields"]:
            table("fields", ["field", "source", "target", "kept", "rule"],
                  [[f, v["source"], v["target"], v["kept"], v["rule"]] for f, v in plan["fields"].items()])
        return
    with app.crm().unit_of_work(app.actor) as uow:
        source, target = resolve_customer(uow, source_key), resolve_customer(uow, target_key)
        counts = uow.customers.merge(source.id, target.id)
        sid, tid = source.id, target.id
    if as_json:
        emit_json({"source": sid, "target": tid, "moved": counts})
    else:
        moved = ", ".join(f"{n} {t}" for t, n in counts.items())
        echo(f"merged customer {sid} into {tid}: moved {moved}")


@click.group(cls=CRMGroup)
def contact() -> None:
    """People at organization customers and their buying roles."""


@contact.command("add")
@click.argument("customer_key", metavar="CUSTOMER", type=CUSTOMER)
@click.argument("name")
@click.option("--role", help="a word of crm.toml [vocabularies] contact_roles")
@click.option("--title")
@click.option("--email")
@click.option("--phone")
@click.option("--ref", "external_ref")
@click.option("--json", "as_json", is_flag=True, help="print the contact as JSON")
@pass_app
def contact_add(app: AppContext, customer_key: str, name: str, as_json: bool, **opts: Any) -> None:
    """Add a contact to an organization customer."""
    data = validate(ContactCreate, name=name, **opts)
    with app.crm().unit_of_work(app.actor) as uow:
        c = resolve_customer(uow, customer_key)
        out = ContactRead.model_validate(uow.contacts.add(c.id, data)).model_dump()
    if as_json:
        emit_json(out)
        return
    echo(f"added contact {out['id']}: {out['name']}")


@contact.command("list")
@click.argument("customer_key", metavar="CUSTOMER", type=CUSTOMER)
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
@click.argument("contact_id", type=ID)
@click.option("--name")
@click.option("--role", help="a word of crm.toml [vocabularies] contact_roles")
@click.option("--title")
@click.option("--email")
@click.option("--phone")
@click.option("--json", "as_json", is_flag=True, help="print the contact as JSON")
@pass_app
def contact_update(app: AppContext, contact_id: int, as_json: bool, **opts: Any) -> None:
    """Change a contact."""
    data = validate(ContactUpdate, **opts)
    with app.crm().unit_of_work(app.actor) as uow:
        out = ContactRead.model_validate(uow.contacts.update(contact_id, data)).model_dump()
    if as_json:
        emit_json(out)
        return
    echo(f"updated contact {contact_id}")


@contact.command("remove")
@click.argument("contact_id", type=ID)
@pass_app
def contact_remove(app: AppContext, contact_id: int) -> None:
    """Remove a contact."""
    with app.crm().unit_of_work(app.actor) as uow:
        uow.contacts.remove(contact_id)
    echo(f"removed contact {contact_id}")
