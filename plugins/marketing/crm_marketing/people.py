"""Consent per person (contact) and channel, and how it combines with the company's.

Campaign mail to an organisation used to reach ``customer.email`` only, with consent per company.
A contact now has consent of their own: a person who opted out or unsubscribed is never contacted,
whatever the company said; a person's opt-in counts where the channel needs one; a person who said
nothing inherits the company's statement. Functions of a unit of work: they flush, never commit.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from crm_marketing.models import Consent, ContactConsent
from crm_marketing.schemas import ConsentSet
from crm_marketing.services import record_statement, settings
from crmcore.errors import Conflict, NotFound
from crmcore.models import Contact
from crmcore.sdk import text_problem, valid_id
from crmcore.uow import UnitOfWork

WITHDRAWN = ("opt_out", "unsubscribed")
CONTACT_FIELDS = ("name", "title", "role", "email", "phone", "external_ref")  # {{ contact.* }} in a role campaign


def resolve_contact(uow: UnitOfWork, key: str | int) -> Contact:
    """A contact by external reference, ``#id`` or bare id; its customer's visibility applies
    (a contact of a customer the actor may not see is "not found" like a missing one)."""
    key_s = str(key).strip()
    if not key_s or text_problem(key_s, 100):
        raise NotFound("contact", repr(key_s[:40]))
    contact = uow.session.scalar(select(Contact).where(Contact.external_ref == key_s))
    digits = key_s.removeprefix("#")
    if contact is None and digits.isascii() and digits.isdigit() and len(digits) <= 10 and valid_id(int(digits)):
        contact = uow.session.get(Contact, int(digits))
    if contact is None:
        raise NotFound("contact", repr(key_s))
    try:
        uow.customers.resolve(f"#{contact.customer_id}")
    except NotFound:
        raise NotFound("contact", repr(key_s)) from None
    return contact


def set_contact_consent(uow: UnitOfWork, contact_id: int, data: ConsentSet) -> ContactConsent:
    """Record one person's statement for a channel; an older statement never replaces a newer one.

    The contact row is locked first (``FOR UPDATE`` on PostgreSQL; SQLite writers are serialised
    by ``BEGIN IMMEDIATE``) so that two writers of the same person cannot both insert.
    """
    uow.require("marketing.consent.write")
    contact = uow.session.scalar(select(Contact).where(Contact.id == contact_id).with_for_update())
    if contact is None:
        raise NotFound("contact", str(contact_id))
    customer = uow.customers.resolve(f"#{contact.customer_id}")
    if customer.archived:
        raise Conflict(f"customer {customer.id} of contact {contact_id} is archived")
    row: ContactConsent = record_statement(uow, ContactConsent, "contact", contact_id, data, populate_existing=True)
    return row


def unsubscribe_contact(uow: UnitOfWork, contact_id: int, channel: str, source: str = "unsubscribe") -> ContactConsent:
    """The person's unsubscribe link or request: withdraws their consent now, the company's untouched."""
    return set_contact_consent(uow, contact_id, ConsentSet(channel=channel, status="unsubscribed", source=source))  # type: ignore[arg-type,unused-ignore]


def contact_consents(uow: UnitOfWork, contact_id: int) -> list[ContactConsent]:
    """The person's own statements (customer visibility applies)."""
    uow.require("customer.read")
    resolve_contact(uow, f"#{contact_id}")
    return list(uow.session.scalars(select(ContactConsent).where(ContactConsent.contact_id == contact_id)
                                    .order_by(ContactConsent.channel)))


@dataclass(frozen=True)
class Verdict:
    """Whether a person may be contacted on a channel, and why not (the suppression reason)."""

    allowed: bool
    reason: str | None
    source: str  # "contact" | "customer" | "none": whose statement decided


def decide(person: str | None, company: str | None, needs_opt_in: bool) -> Verdict:
    """The rule, as one pure function (used per row by campaigns): a withdrawal by the person or
    by the company suppresses (the safe side); an opt-in from either satisfies a channel that
    requires one."""
    if person in WITHDRAWN:
        return Verdict(False, f"contact consent: {person}", "contact")
    if company in WITHDRAWN:
        return Verdict(False, f"consent: {company}", "customer")
    if person == "opt_in":
        return Verdict(True, None, "contact")
    if needs_opt_in and company != "opt_in":
        return Verdict(False, "consent: no opt-in", "none")
    return Verdict(True, None, "customer" if company else "none")


def effective_consent(uow: UnitOfWork, contact_id: int, channel: str) -> Verdict:
    """May this person be contacted on ``channel`` now (their statement, else their company's)."""
    contact = resolve_contact(uow, f"#{contact_id}")
    own = uow.session.get(ContactConsent, (contact_id, channel))
    company = uow.session.get(Consent, (contact.customer_id, channel))
    return decide(own.status if own else None, company.status if company else None, channel in settings(uow).consent_required)


def contact_context(uow: UnitOfWork, contact_id: int) -> dict[str, str]:
    """The person's fields a role campaign's template may use (``Dear {{ contact.name }}``)."""
    contact = uow.session.get(Contact, contact_id)
    if contact is None:
        raise NotFound("contact", str(contact_id))
    return {f: "" if getattr(contact, f) is None else str(getattr(contact, f)) for f in CONTACT_FIELDS}
