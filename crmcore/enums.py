"""Closed vocabularies of the core entities (stored as strings with CHECK constraints)."""
from __future__ import annotations

from enum import StrEnum


class CustomerKind(StrEnum):
    PERSON = "person"
    ORGANIZATION = "organization"
    GOVERNMENT = "government"


class LifecycleStage(StrEnum):
    PROSPECT = "prospect"
    TARGET = "target"
    ACTIVE = "active"
    AT_RISK = "at_risk"
    CHURNED = "churned"


class ContactRole(StrEnum):
    """Roles in the buying centre."""

    INITIATOR = "initiator"
    USER = "user"
    INFLUENCER = "influencer"
    DECIDER = "decider"
    GATEKEEPER = "gatekeeper"


class Channel(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    VISIT = "visit"
    MEETING = "meeting"
    WEB = "web"
    CHAT = "chat"
    SMS = "sms"
    MAIL = "mail"
    EVENT = "event"
    OTHER = "other"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class InteractionKind(StrEnum):
    INQUIRY = "inquiry"
    COMPLAINT = "complaint"
    FEEDBACK = "feedback"
    FOLLOW_UP = "follow_up"
    SALE = "sale"
    SUPPORT = "support"
    MARKETING = "marketing"
    OTHER = "other"


class AccountStatus(StrEnum):
    OPEN = "open"
    ON_HOLD = "on_hold"
    CLOSED = "closed"


class TransactionKind(StrEnum):
    INVOICE = "invoice"
    PAYMENT = "payment"
    CREDIT_NOTE = "credit_note"
    ADJUSTMENT = "adjustment"
    WRITE_OFF = "write_off"
    CHARGE = "charge"  # a dunning fee or interest: owed like an invoice, due at once


#: kinds that may name the entry they settle (``applies_to``): the credits, and a charge (the
#: invoice it is charged on)
SETTLING_KINDS = frozenset({TransactionKind.PAYMENT, TransactionKind.CREDIT_NOTE, TransactionKind.WRITE_OFF})
NAMING_KINDS = SETTLING_KINDS | {TransactionKind.CHARGE}


# Sign of each kind's effect on the balance (what the customer owes us). Amounts are entered
# positive; an adjustment carries its own sign.
BALANCE_SIGN: dict[TransactionKind, int] = {
    TransactionKind.INVOICE: 1,
    TransactionKind.PAYMENT: -1,
    TransactionKind.CREDIT_NOTE: -1,
    TransactionKind.WRITE_OFF: -1,
    TransactionKind.ADJUSTMENT: 1,
    TransactionKind.CHARGE: 1,
}


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    SALES = "sales"
    MARKETING = "marketing"
    CREDIT_CONTROLLER = "credit_controller"
    VIEWER = "viewer"
