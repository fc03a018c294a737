"""The customer's fields are declared once (crmcore.services.customer_fields): the declaration
matches the schemas and the model, and the faces that already derive from it agree with it."""
from __future__ import annotations

from sqlalchemy import inspect as sa_inspect

from crmcore.models import Customer
from crmcore.schemas import CustomerCreate, CustomerUpdate
from crmcore.services import customers as customer_service
from crmcore.services.customer_fields import (
    CLEARABLE,
    COMPARED,
    CUSTOMER_FIELDS,
    FILE_COLUMNS,
    LABELS,
    PLAIN,
    defaults,
)

# what a CustomerCreate carries that is not a field of the customer's own (custom fields)
NOT_FIELDS = {"attributes"}


def test_every_schema_field_is_declared_and_nothing_else() -> None:
    declared = {f.name for f in CUSTOMER_FIELDS}
    assert declared == set(CustomerCreate.model_fields) - NOT_FIELDS
    assert declared - {"external_ref"} <= set(CustomerUpdate.model_fields) | {"external_ref"}


def test_every_declared_field_is_stored_in_a_column() -> None:
    columns = {c.key for c in sa_inspect(Customer).column_attrs}
    assert {f.stored_as for f in CUSTOMER_FIELDS} <= columns
    assert set(COMPARED) <= columns and "external_ref" not in COMPARED  # the key is not compared, it matches


def test_derived_lists() -> None:
    assert FILE_COLUMNS[0] == "external_ref" and len(FILE_COLUMNS) == len(CUSTOMER_FIELDS)
    assert "owner" not in PLAIN and "owner_id" in COMPARED and "attributes" in COMPARED
    assert set(CLEARABLE) == {"external_ref", "email", "phone", "country", "region", "industry", "owner"}
    assert LABELS["lifecycle_stage"] == "Lifecycle stage"
    assert customer_service._PLAIN == PLAIN  # the service derives its list


def test_defaults_are_the_schemas() -> None:
    d = defaults()
    assert d == {"kind": "organization", "email": None, "phone": None, "country": None, "region": None,
                 "industry": None, "lifecycle_stage": "prospect", "owner_id": None, "tags": []}
    assert d["tags"] is not defaults()["tags"]  # a fresh list each time, never shared between rows


def test_the_import_spec_agrees() -> None:
    from crmcore.bulk.specs import SPECS

    assert tuple(SPECS["customers"].columns) == FILE_COLUMNS
