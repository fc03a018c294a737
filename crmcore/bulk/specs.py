"""The documented column set of each importable entity (the same columns ``crm export`` writes)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EntitySpec:
    name: str
    columns: tuple[str, ...]
    required: tuple[str, ...]
    key: str  # what makes a row idempotent
    doc: str


CUSTOMERS = EntitySpec(
    "customers",
    ("external_ref", "name", "kind", "email", "phone", "country", "region", "industry", "lifecycle_stage", "owner", "tags"),
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
     "outcome", "satisfaction"),
    ("customer_ref", "channel", "subject", "occurred_at"),
    "external_ref",
    "without external_ref, a reference is derived from customer_ref, occurred_at, channel and subject",
)
TRANSACTIONS = EntitySpec(
    "transactions",
    ("customer_ref", "kind", "amount", "currency", "occurred_at", "due_date", "reference", "description", "category"),
    ("customer_ref", "kind", "amount", "occurred_at", "reference"),
    "reference",
    "posted to the customer's default account; the same reference again is a no-op",
)

SPECS = {s.name: s for s in (CUSTOMERS, CONTACTS, INTERACTIONS, TRANSACTIONS)}
ATTR_PREFIX = "attr."
