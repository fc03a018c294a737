"""The customer's own fields, declared once.

The service, the importer and exporter (``bulk/specs.py``, ``bulk/keyed.py``, ``bulk/exporter.py``),
the CLI and the console used to keep seven copies of this list; a field added to one and not
the others was silently dropped by some face. They derive theirs from :data:`CUSTOMER_FIELDS`;
``tests/test_customer_fields.py`` checks the declaration against the schema and the model.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any


@dataclass(frozen=True)
class CustomerField:
    """One field a client gives for a customer (by the schema's name) and where it is stored."""

    name: str  # as in CustomerCreate, the import/export file and the API
    label: str  # English label (a message id) for tables and forms
    column: str = ""  # the Customer column storing it (default: the same name)
    plain: bool = True  # copied from the schema onto the model as it is (owner is looked up)
    clearable: bool = False  # may be set back to empty after creation

    @property
    def stored_as(self) -> str:
        return self.column or self.name


#: in the order of the import/export file (the reference first: it keys the rows)
CUSTOMER_FIELDS: tuple[CustomerField, ...] = (
    CustomerField("external_ref", "Reference", clearable=True),
    CustomerField("name", "Name"),
    CustomerField("kind", "Kind"),
    CustomerField("email", "Email", clearable=True),
    CustomerField("phone", "Phone", clearable=True),
    CustomerField("country", "Country", clearable=True),
    CustomerField("region", "Region", clearable=True),
    CustomerField("industry", "Industry", clearable=True),
    CustomerField("lifecycle_stage", "Lifecycle stage"),
    CustomerField("owner", "Owner", column="owner_id", plain=False, clearable=True),
    CustomerField("tags", "Tags"),
)

#: the file columns of ``crm import customers`` / ``crm export customers`` (custom fields: ``attr.<name>``)
FILE_COLUMNS: tuple[str, ...] = tuple(f.name for f in CUSTOMER_FIELDS)
#: fields the service copies straight from a CustomerCreate/Update onto the model
PLAIN: tuple[str, ...] = tuple(f.name for f in CUSTOMER_FIELDS if f.plain)
#: model columns compared to tell an unchanged imported row from a changed one (plus custom attributes)
COMPARED: tuple[str, ...] = (*(f.stored_as for f in CUSTOMER_FIELDS if f.name != "external_ref"), "attributes")
#: fields a form may set back to empty
CLEARABLE: tuple[str, ...] = tuple(f.name for f in CUSTOMER_FIELDS if f.clearable)
LABELS: dict[str, str] = {f.name: f.label for f in CUSTOMER_FIELDS}


@cache
def _schema_defaults() -> tuple[tuple[str, Any], ...]:
    from crmcore.schemas import CustomerCreate

    return tuple((f.stored_as, CustomerCreate.model_fields[f.name].get_default(call_default_factory=True))
                 for f in CUSTOMER_FIELDS if f.name not in ("name", "external_ref"))


def defaults() -> dict[str, Any]:
    """The model values of a customer created with no more than a name (the schema's defaults),
    by stored column; what a set-based insert must write for the fields a row leaves out.

    Read from the schema once (the importer asks once per row); a list is copied each time, so
    no two rows share one."""
    return {k: list(v) if isinstance(v, list) else v for k, v in _schema_defaults()}


__all__ = ["CLEARABLE", "COMPARED", "CUSTOMER_FIELDS", "FILE_COLUMNS", "LABELS", "PLAIN", "CustomerField", "defaults"]
