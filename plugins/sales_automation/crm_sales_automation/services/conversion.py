"""Lead conversion: match a lead to an existing customer, or create one, in one transaction."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select

from crm_sales_automation.enums import (
    LeadStatus,
)
from crm_sales_automation.models import (
    Conversion,
    Lead,
)
from crm_sales_automation.schemas import (
    OpportunityCreate,
)
from crm_sales_automation.services._common import _audit, _username
from crm_sales_automation.services.leads import get_lead
from crm_sales_automation.services.opportunities import add_opportunity
from crm_sales_automation.services.referrals import carry_over
from crmcore.enums import CustomerKind
from crmcore.errors import Conflict, InvalidInput
from crmcore.models import Contact, Customer
from crmcore.schemas import ContactCreate, CustomerCreate
from crmcore.sdk import vocabularies_of
from crmcore.uow import UnitOfWork

_LEGAL = {"gmbh", "ag", "kg", "ohg", "ug", "ltd", "limited", "inc", "llc", "plc", "corp", "co", "company", "sa", "sas",
          "sarl", "srl", "spa", "bv", "nv", "oy", "ab", "as", "kft", "sro", "the", "und", "and"}


def normalise_name(name: str) -> str:
    """Lower case, accents and punctuation removed, legal forms dropped: 'Alpine Kitchens GmbH' -> 'alpine kitchens'."""
    s = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower().replace("&", " ")
    words = [w for w in re.split(r"[^a-z0-9]+", s) if w and w not in _LEGAL]
    return " ".join(words)


@dataclass
class Match:
    customer_id: int
    name: str
    ref: str | None
    by: list[str]


def find_matches(uow: UnitOfWork, lead: Lead) -> list[Match]:
    """Existing customers that may be this lead: same email, same phone, or same normalised name.

    Email and phone are compared in SQL; names are narrowed in SQL by their longest word, then
    compared normalised.
    """
    target = normalise_name(lead.company or lead.name)
    conds = []
    if lead.email:
        conds.append(func.lower(Customer.email) == lead.email.lower())
    if lead.phone:
        conds.append(Customer.phone == lead.phone)
    words = sorted(target.split(), key=len, reverse=True)
    if words:
        esc = words[0].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conds.append(func.lower(Customer.name).like(f"%{esc}%", escape="\\"))
    if not conds:
        return []
    found: dict[int, Match] = {}
    q = select(Customer).where(or_(*conds), Customer.archived.is_(False)).order_by(Customer.id).limit(500)
    for c in uow.session.scalars(q):
        by = []
        if lead.email and c.email and c.email.lower() == lead.email.lower():
            by.append("email")
        if lead.phone and c.phone == lead.phone:
            by.append("phone")
        if target and normalise_name(c.name) == target:
            by.append("name")
        if by:
            found[c.id] = Match(c.id, c.name, c.external_ref, by)
    return list(found.values())


@dataclass
class ConversionResult:
    lead_id: int
    customer_id: int
    customer_created: bool
    matched_by: str
    contact_id: int | None
    opportunity_id: int | None
    matches: list[Match] = field(default_factory=list)


#: the buying-centre role a lead's person gets as a new contact unless one is given
CONTACT_ROLE = "initiator"


def _contact_role(uow: UnitOfWork, role: str | None) -> str | None:
    """``role`` checked against the contact_roles vocabulary; without one :data:`CONTACT_ROLE`,
    when crm.toml's vocabulary still has it."""
    vocab = vocabularies_of(uow.crm)
    if role is not None:
        return vocab.check("contact_roles", role, "role")
    return CONTACT_ROLE if CONTACT_ROLE in vocab.allowed("contact_roles") else None


def convert(uow: UnitOfWork, lead_id: int, *, customer_id: int | None = None, new: bool = False,
            opportunity: OpportunityCreate | None = None, contact_role: str | None = None) -> ConversionResult:
    """Turn a qualified lead into a customer (with its contact), or match it to an existing one.

    - ``customer_id``: use this customer (the user chose among the matches);
    - ``new``: create a new customer even if some match (``--new``);
    - otherwise one customer with the same email or phone is used (shown as the match); a match
      by name only, or several candidates, is refused with the list, so nothing is duplicated
      silently and nothing is merged by guess.

    The lead's person becomes a contact of an organisation customer with ``contact_role`` (a
    word of contact_roles; default ``initiator``) and the lead's reference (the badge number of
    a badge scan) as the contact's reference, unless another contact has it already.
    """
    uow.require("sales.lead.write")
    role = _contact_role(uow, contact_role)
    lead = get_lead(uow, lead_id)
    # lock the lead and re-read it (PostgreSQL FOR NO KEY UPDATE; SQLite's writing units of work hold the
    # write lock): conversions of one lead at the same instant queue here, and the later ones see
    # it converted. UNIQUE(sales_conversions.lead_id) backs this up.
    uow.session.flush()
    uow.session.refresh(lead, with_for_update={"key_share": True})
    if lead.status is LeadStatus.CONVERTED:
        raise Conflict(f"lead {lead_id} is already converted (customer {lead.customer_id})")
    if lead.status is LeadStatus.DISQUALIFIED:
        raise Conflict(f"lead {lead_id} is disqualified; requalify it (`crm sales lead update {lead_id} --status qualified`) to convert it")
    if lead.status is not LeadStatus.QUALIFIED:
        raise Conflict(f"lead {lead_id} is {lead.status.value}; only a qualified lead is converted "
                       f"(`crm sales lead update {lead_id} --status qualified`)")
    if customer_id is not None and new:
        raise InvalidInput("give either --customer or --new, not both")
    matches = [] if (new or customer_id is not None) else find_matches(uow, lead)
    created = False
    if customer_id is not None:
        customer = uow.customers.get(customer_id)
        if customer.archived:
            raise Conflict(f"customer {customer_id} is archived")
        matched_by = "chosen"
    elif new or not matches:
        org = bool(lead.company)
        customer = uow.customers.create(CustomerCreate(
            name=lead.company or lead.name, kind=CustomerKind.ORGANIZATION if org else CustomerKind.PERSON,
            email=None if org else lead.email, phone=None if org else lead.phone, country=lead.country,
            owner=_username(uow, lead.owner_id)))
        created, matched_by = True, "new"
    else:
        strong = [m for m in matches if {"email", "phone"} & set(m.by)]
        if len(matches) == 1 and strong:
            customer = uow.customers.get(strong[0].customer_id)
            matched_by = strong[0].by[0]
        else:
            listed = "; ".join(f"#{m.customer_id} {m.name} (same {', '.join(m.by)})" for m in matches[:10])
            raise Conflict(f"lead {lead_id} may already be a customer: {listed}; convert with --customer ID to use one, "
                           "or --new to create a new customer")
    contact_id = None
    if customer.kind is not CustomerKind.PERSON and (lead.company or customer.name != lead.name):
        same = None
        if lead.email:
            same = uow.session.scalar(select(Contact.id).where(Contact.customer_id == customer.id,
                                                               func.lower(Contact.email) == lead.email.lower()))
        if same is None:
            taken = uow.session.scalar(select(Contact.id).where(Contact.external_ref == lead.external_ref))
            same = uow.contacts.add(customer.id, ContactCreate(name=lead.name, email=lead.email, phone=lead.phone, role=role,
                                                               external_ref=None if taken else lead.external_ref)).id
        contact_id = same
    opp_id = None
    if opportunity is not None:
        opp_id = add_opportunity(uow, customer.id, opportunity, lead_id=lead.id).id
    lead.status, lead.customer_id = LeadStatus.CONVERTED, customer.id
    referral_kept = carry_over(uow, lead, customer.id)
    uow.session.add(Conversion(lead_id=lead.id, customer_id=customer.id, contact_id=contact_id, opportunity_id=opp_id,
                               matched_by=matched_by, converted_by=uow.actor))
    uow.session.flush()
    _audit(uow, "convert", "lead", lead.id, after={"customer_id": customer.id, "matched_by": matched_by,
                                                   "contact_id": contact_id, "opportunity_id": opp_id,
                                                   "referral_kept": referral_kept})
    uow.hooks.call("sales_lead_converted", uow=uow, lead=lead, customer_id=customer.id, opportunity_id=opp_id)
    return ConversionResult(lead.id, customer.id, created, matched_by, contact_id, opp_id, matches)
