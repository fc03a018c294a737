"""Streaming export in the import column set, so export → import → export is identical.

CSV cells that a spreadsheet would run as a formula are neutralised (see csv_safety); the
importer restores them, so nothing is lost in a round trip.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any, TextIO

from sqlalchemy import Select, String, cast, func, select
from sqlalchemy.orm import aliased

from crmcore.app import CRM
from crmcore.bulk.csv_safety import neutralise_cell
from crmcore.bulk.registry import get_entity
from crmcore.errors import InvalidInput
from crmcore.models import Account, Allocation, Contact, Customer, Interaction, Transaction, User
from crmcore.services._base import jsonable
from crmcore.services.customer_fields import CUSTOMER_FIELDS

FORMATS = ("csv", "jsonl")


def _customer_columns() -> list[Any]:
    """The customer's file columns, in the declared order (the owner by username)."""
    return [User.username.label("owner") if f.name == "owner" else getattr(Customer, f.stored_as).label(f.name)
            for f in CUSTOMER_FIELDS]


def _allocated() -> Any:
    """``REF1=100.00;REF2=50.00``: the invoices an entry settles with amounts (the import column's form)."""
    target = aliased(Transaction)
    return (select(func.aggregate_strings(target.reference + "=" + cast(Allocation.amount, String), ";"))
            .select_from(Allocation).join(target, target.id == Allocation.target_id)
            .where(Allocation.entry_id == Transaction.id).scalar_subquery())


def core_query(entity: str) -> Select[*tuple[Any, ...]]:
    """The export query of a core entity (its rows in the import column set)."""
    if entity == "customers":
        return (select(*_customer_columns(), Customer.attributes)
                .outerjoin(User, User.id == Customer.owner_id).where(Customer.merged_into_id.is_(None)).order_by(Customer.id))
    if entity == "contacts":
        return (select(Contact.external_ref, Customer.external_ref.label("customer_ref"), Contact.name, Contact.role, Contact.title,
                       Contact.email, Contact.phone)
                .join(Customer, Customer.id == Contact.customer_id).order_by(Contact.id))
    if entity == "interactions":
        return (select(Interaction.external_ref, Customer.external_ref.label("customer_ref"), Interaction.channel,
                       Interaction.direction, Interaction.kind, Interaction.subject, Interaction.notes, Interaction.occurred_at,
                       User.username.label("handled_by"), Interaction.outcome, Interaction.satisfaction,
                       Contact.external_ref.label("contact_ref"))
                .join(Customer, Customer.id == Interaction.customer_id).outerjoin(User, User.id == Interaction.handled_by_id)
                .outerjoin(Contact, Contact.id == Interaction.contact_id)
                .order_by(Interaction.id))
    if entity == "transactions":
        settled = aliased(Transaction)  # the entry a payment/credit note names (exported by its reference)
        return (select(Customer.external_ref.label("customer_ref"), Transaction.kind, Transaction.amount, Transaction.currency,
                       Transaction.occurred_at, Transaction.due_date, Transaction.reference, Transaction.description,
                       Transaction.category, func.coalesce(settled.reference, _allocated()).label("applies_to"),
                       Transaction.cost)
                .join(Account, Account.id == Transaction.account_id).join(Customer, Customer.id == Account.customer_id)
                .outerjoin(settled, settled.id == Transaction.applies_to_id)
                .where(Account.is_default).order_by(Transaction.id))
    raise InvalidInput(f"unknown core entity {entity!r}")


def iter_records(crm: CRM, entity: str) -> Iterator[dict[str, Any]]:
    """Rows as {column: JSON-ready value}, streamed from the database in chunks."""
    ent = get_entity(crm, entity)
    if ent.export_rows is None:
        raise InvalidInput(f"entity {entity!r} cannot be exported (it registers no export_rows)")
    with crm.unit_of_work("export", read_only=True) as uow:
        for rec in ent.export_rows(uow):
            yield {k: jsonable(v) for k, v in rec.items()}


class _LineFeed:
    """Rows end in a plain line feed, yet every cell holding a carriage return is quoted.

    The csv module quotes a cell only for the characters of its own line terminator, so with
    ``"\n"`` a note holding a bare ``"\r"`` was written unquoted and split the row on import.
    The writer therefore uses ``"\r\n"`` (quoting cells with either) and this wrapper turns
    each row's final ``"\r\n"`` into ``"\n"`` (one ``write`` per row).
    """

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def write(self, row: str) -> int:
        return self.out.write(row[:-2] + "\n" if row.endswith("\r\n") else row)


def export(crm: CRM, entity: str, out: TextIO, fmt: str = "csv") -> int:
    """Write every row of ``entity`` to ``out``; returns the number of rows."""
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    columns = get_entity(crm, entity).all_columns(crm)
    n = 0
    if fmt == "jsonl":
        for rec in iter_records(crm, entity):
            out.write(json.dumps({c: rec.get(c) for c in columns}, ensure_ascii=False) + "\n")
            n += 1
        return n
    writer = csv.writer(_LineFeed(out), lineterminator="\r\n")
    writer.writerow(columns)
    for rec in iter_records(crm, entity):
        cells = []
        for c in columns:
            v = rec.get(c)
            if v is None:
                cells.append("")
            elif isinstance(v, list):
                cells.append(neutralise_cell(",".join(str(x) for x in v)))
            elif isinstance(v, str):
                cells.append(neutralise_cell(v))
            elif isinstance(v, dict):
                cells.append(neutralise_cell(json.dumps(v, ensure_ascii=False)))
            else:
                cells.append(str(v).lower() if isinstance(v, bool) else v)
        writer.writerow(cells)
        n += 1
    return n
