"""The documented column set of each importable entity (the same columns ``crm export`` writes)."""
from __future__ import annotations

from dataclasses import dataclass

from crmcore.services.customer_fields import FILE_COLUMNS


@dataclass(frozen=True)
class EntitySpec:
    name: str
    columns: tuple[str, ...]
    required: tuple[str, ...]
    key: str  # what makes a row idempotent
    doc: str


CUSTOMERS = EntitySpec(
    "customers",
    FILE_COLUMNS,  # declared once, in crmcore.services.customer_fields
    ("external_ref", "name"),
    "external_ref",
    "tags are comma-separated; custom attributes go in columns named attr.<field>",
)
CONTACTS = EntitySpec(
    "contacts",
    ("external_ref", "customer_ref", "name", "role", "title", "email", "phone"),
    ("external_ref", "customer_ref", "name"),
    "external_ref",
    "customer_ref is the customer's external_ref; the customer must be an organization or government",
)
INTERACTIONS = EntitySpec(
    "interactions",
    ("external_ref", "customer_ref", "channel", "direction", "kind", "subject", "notes", "occurred_at", "handled_by",
     "outcome", "satisfaction", "contact_ref"),
    ("customer_ref", "channel", "subject", "occurred_at"),
    "external_ref",
    "without external_ref, a reference is derived from customer_ref, occurred_at, channel and subject; "
    "contact_ref (optional) is the external_ref of one of the customer's contacts, the person spoken with",
)
TRANSACTIONS = EntitySpec(
    "transactions",
    ("customer_ref", "kind", "amount", "currency", "occurred_at", "due_date", "reference", "description", "category",
     "applies_to", "cost"),
    ("customer_ref", "kind", "amount", "occurred_at", "reference"),
    "reference",
    "posted to the customer's default account; the same reference again is a no-op; applies_to is the reference of "
    "the customer's invoice (or charge) a payment, credit note or write-off settles (already "
    "posted, or earlier in the same file); cost is the entry's cost of goods",
)

SPECS = {s.name: s for s in (CUSTOMERS, CONTACTS, INTERACTIONS, TRANSACTIONS)}
ATTR_PREFIX = "attr."
