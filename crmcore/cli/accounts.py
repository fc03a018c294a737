"""`crm account list|open|post|statement|status`."""
from __future__ import annotations

import datetime as dt
from typing import Any

import click

from crmcore.cli.context import AppContext, CRMGroup, pass_app
from crmcore.cli.customers import choice, resolve_customer
from crmcore.cli.output import echo, emit_json, table, validate
from crmcore.cli.params import CUSTOMER, DATE, DATETIME, ID, TextType
from crmcore.enums import AccountStatus, TransactionKind
from crmcore.schemas import AccountCreate, AccountRead, TransactionCreate, TransactionRead


def register(cli: click.Group) -> None:
    cli.add_command(account)


@click.group(cls=CRMGroup)
def account() -> None:
    """Customer accounts (ledgers): post entries, read statements."""


@account.command("list")
@click.option("--customer", "customer_key", metavar="CUSTOMER", type=CUSTOMER)
@click.option("--json", "as_json", is_flag=True)
@pass_app
def account_list(app: AppContext, customer_key: str | None, as_json: bool) -> None:
    """Accounts with their balances."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        cid = resolve_customer(uow, customer_key).id if customer_key else None
        rows = [AccountRead.model_validate(a).model_dump() for a in uow.accounts.list(cid)]
    if as_json:
        emit_json(rows)
    else:
        table("accounts", ["id", "customer", "currency", "status", "terms", "balance", "default"],
              [[r["id"], r["customer_id"], r["currency"], r["status"], r["payment_terms_days"], r["balance"],
                "yes" if r["is_default"] else ""] for r in rows])


@account.command("open")
@click.argument("customer_key", metavar="CUSTOMER", type=CUSTOMER)
@click.option("--currency", default="EUR", show_default=True)
@click.option("--terms", "payment_terms_days", type=int, default=30, show_default=True, help="payment terms in days")
@click.option("--default", "is_default", is_flag=True, help="make it the customer's default account")
@click.option("--json", "as_json", is_flag=True, help="print the account as JSON")
@pass_app
def account_open(app: AppContext, customer_key: str, as_json: bool, **opts: Any) -> None:
    """Open an account for a customer."""
    data = validate(AccountCreate, **opts)
    with app.crm().unit_of_work(app.actor) as uow:
        a = uow.accounts.open(resolve_customer(uow, customer_key).id, data)
        out = AccountRead.model_validate(a).model_dump()
    if as_json:  # only once committed
        emit_json(out)
        return
    echo(f"opened account {out['id']} ({out['currency']})")


@account.command("post", context_settings={"ignore_unknown_options": True})
@click.argument("customer_key", metavar="CUSTOMER", type=CUSTOMER)
@click.argument("kind", type=choice(TransactionKind))
@click.argument("amount", type=TextType(100))
@click.option("--ref", "reference", required=True, help="document reference, unique per account")
@click.option("--currency")
@click.option("--at", "occurred_at", metavar="DATETIME", type=DATETIME)
@click.option("--due", "due_date", metavar="DATE", type=DATE, help="invoice due date (default: date + payment terms)")
@click.option("--description")
@click.option("--account", "account_id", type=ID, help="post to this account instead of the default one")
@click.option("--applies-to", "applies_to", metavar="REF[=AMOUNT]", multiple=True,
              help="the invoice (or charge) this payment, credit note or write-off settles; repeat it for several, "
                   "each with the amount settled there (none: what is left, in order); a charge names its invoice")
@click.option("--cost", type=TextType(100), help="cost of goods of the entry (profit analyses)")
@click.option("--category", help="product line")
@click.option("--json", "as_json", is_flag=True, help="print the entry, whether it was new, and the balance as JSON")
@pass_app
def account_post(app: AppContext, customer_key: str, account_id: int | None, as_json: bool, **opts: Any) -> None:
    """Post an entry: invoice, payment, credit_note, adjustment, write_off or charge."""
    data = validate(TransactionCreate, **opts)
    with app.crm().unit_of_work(app.actor) as uow:
        entry, created = uow.accounts.post(resolve_customer(uow, customer_key).id, data, account_id)
        balance = uow.accounts.get(entry.account_id).balance
        out = {"created": created, "entry": TransactionRead.model_validate(entry).model_dump(), "balance": balance}
        what = "posted" if created else "already posted (no change)"
        named = [f"{a.reference} {a.amount}" for a in entry.allocations] or ([entry.applies_to] if entry.applies_to else [])
        settles = f" (applies to {', '.join(named)})" if named else ""
        line = (f"{what}: {entry.kind.value} {entry.amount} {entry.currency} ref {entry.reference}{settles}; "
                f"account {entry.account_id} balance {balance}")
    if as_json:  # only once committed
        emit_json(out)
        return
    echo(line)


@account.command("statement")
@click.argument("account_id", type=ID)
@click.option("--since", metavar="DATE", type=DATETIME)
@click.option("--until", metavar="DATE", type=DATETIME)
@click.option("--json", "as_json", is_flag=True)
@pass_app
def account_statement(app: AppContext, account_id: int, since: dt.datetime | None, until: dt.datetime | None, as_json: bool) -> None:
    """Entries of an account with the running balance."""
    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        st = uow.accounts.statement(account_id, since, until)
        lines = [{**TransactionRead.model_validate(line.entry).model_dump(), "effect": line.effect, "balance": line.running_balance}
                 for line in st.lines]
        head = {"account": st.account.id, "customer": st.account.customer_id, "currency": st.account.currency,
                "opening_balance": st.opening_balance, "closing_balance": st.closing_balance}
    if as_json:
        emit_json({**head, "lines": lines})
        return
    table(f"Account {head['account']} ({head['currency']}), opening balance {head['opening_balance']}",
          ["date", "kind", "reference", "amount", "due", "balance"],
          [[line["occurred_at"].date(), line["kind"], line["reference"], line["effect"], line["due_date"], line["balance"]] for line in lines])
    echo(f"closing balance: {head['closing_balance']} {head['currency']}")


@account.command("status")
@click.argument("account_id", type=ID)
@click.argument("status", type=choice(AccountStatus))
@click.option("--json", "as_json", is_flag=True, help="print the account as JSON")
@pass_app
def account_status(app: AppContext, account_id: int, status: str, as_json: bool) -> None:
    """Put an account on hold, release it (open) or close it."""
    with app.crm().unit_of_work(app.actor) as uow:
        a = uow.accounts.set_status(account_id, AccountStatus(status))
        out = AccountRead.model_validate(a).model_dump()
    if as_json:
        emit_json(out)
        return
    echo(f"account {out['id']} is {out['status']}")
