"""Every face that lists the customer's fields derives them from crmcore.services.customer_fields.

A field added in one place only (the declaration, the importer, the exporter, the import spec, the
CLI or the console's form) fails one of these: each face's list is compared with the declaration,
and the declaration with the schema (tests/test_customer_fields.py).
"""
from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

from crmcore import CRM
from crmcore.bulk import keyed
from crmcore.bulk.exporter import core_query, export
from crmcore.bulk.specs import SPECS
from crmcore.cli.customers import customer, customer_options
from crmcore.console.pages import customers as console_customers
from crmcore.schemas import CustomerCreate
from crmcore.services.customer_fields import CLEARABLE, COMPARED, CUSTOMER_FIELDS, FILE_COLUMNS, LABELS, PLAIN, defaults

FORM = Path(console_customers.__file__).parent.parent / "templates" / "customers" / "form.html"


def test_import_spec_and_importer_derive_the_list() -> None:
    assert SPECS["customers"].columns == FILE_COLUMNS
    assert SPECS["customers"].key == FILE_COLUMNS[0] == "external_ref"
    assert keyed.CustomerImporter.compare == COMPARED
    assert set(keyed._COPIED) == set(PLAIN) - {"external_ref"}


def test_importer_new_row_carries_every_declared_column() -> None:
    imp = keyed.CustomerImporter.__new__(keyed.CustomerImporter)  # new_row needs no state
    row = imp.new_row({"name": "Acme"}, "R1", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert {f.stored_as for f in CUSTOMER_FIELDS} <= set(row)
    assert row["external_ref"] == "R1" and row["name"] == "Acme"
    assert {k: row[k] for k in defaults()} == defaults()


def test_exporter_query_is_the_file_columns() -> None:
    names = [c.name for c in core_query("customers").selected_columns]
    assert names == [*FILE_COLUMNS, "attributes"]


def test_export_header_is_the_declaration(crm: CRM) -> None:
    out = io.StringIO()
    export(crm, "customers", out)
    assert tuple(out.getvalue().splitlines()[0].split(",")) == FILE_COLUMNS


def test_cli_has_an_option_per_field() -> None:
    def target() -> None: ...

    options = {p.name for p in customer_options(target).__click_params__}
    assert options == set(FILE_COLUMNS) - {"name"} | {"attrs"}  # the name is the argument
    assert "name" in {p.name for p in customer.commands["add"].params}


def test_console_form_lists_every_field() -> None:
    assert set(console_customers.FIELDS) == set(FILE_COLUMNS)
    assert set(console_customers.CLEARABLE) == set(CLEARABLE)
    assert console_customers.LABELS == LABELS
    html = FORM.read_text(encoding="utf-8")
    for f in FILE_COLUMNS:
        assert re.search(rf'm\.(input|select)\("{f}"|name="{f}"', html), f"the console's form has no {f!r} field"
    # the stale-edit table lists the differing fields in FIELDS' order: the form's own order
    shown = [m.group(2) or m.group(3) for m in re.finditer(r'm\.(input|select)\("(\w+)"|<select id="f-\w+" name="(\w+)"', html)]
    assert shown == list(console_customers.FIELDS)


def test_declaration_is_the_schema_order_free_of_extras() -> None:
    assert set(FILE_COLUMNS) | {"attributes"} == set(CustomerCreate.model_fields)
