"""Campaigns addressed to people (contacts) by buying-centre role, e.g. deciders and buyers.

The company stays the unit of the holdout and of attribution (revenue is booked per customer):
its :class:`~crm_marketing.models.Target` row says contact, control or suppressed as before. The
people of a contacted company with one of the campaign's roles become
:class:`~crm_marketing.models.ContactTarget` rows, each checked against their own consent (see
:func:`crm_marketing.people.decide`) and mailed at their own address. Sending claims person rows
the way :mod:`crm_marketing.delivery` claims company rows: never twice.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
from sqlalchemy import String, Subquery, and_, insert, literal, select, type_coerce

from crm_marketing.delivery import CORE_CHANNEL, ChannelAdapter, Message, SendResult, _message
from crm_marketing.delivery import _claim as delivery_claim
from crm_marketing.delivery import _release as delivery_release
from crm_marketing.models import Campaign, Consent, ContactConsent, ContactTarget, Target, Variant
from crm_marketing.people import decide
from crm_marketing.schemas import MarketingSettings
from crmcore.db.types import utcnow
from crmcore.errors import Conflict, CRMError, InvalidInput
from crmcore.models import Contact, Customer
from crmcore.schemas import InteractionCreate
from crmcore.sdk import CRM, vocabularies_of
from crmcore.uow import UnitOfWork

CONTACT_ADDRESS = {"email": Contact.email, "sms": Contact.phone, "phone": Contact.phone}


def parse_roles(uow: UnitOfWork, text: str | Sequence[str]) -> list[str]:
    """``"decider,buyer"`` checked against the installation's ``contact_roles`` vocabulary."""
    words = text.split(",") if isinstance(text, str) else list(text)
    vocab = vocabularies_of(uow.crm)
    roles = [vocab.check("contact_roles", w, "to_roles") for w in words if str(w).strip()]
    if not roles:
        raise InvalidInput("invalid input: to_roles: name at least one contact role, e.g. decider,buyer",
                           [("to_roles", "empty")])
    return sorted({r for r in roles if r})


def address_to_roles(uow: UnitOfWork, campaign: Campaign, roles: str | Sequence[str] | None) -> Campaign:
    """Address a draft campaign to contacts with these roles (None or empty: back to the company)."""
    uow.require("marketing.campaign.write")
    if campaign.status not in ("draft", "scheduled"):
        raise Conflict(f"campaign {campaign.name!r} is {campaign.status}; its audience is fixed at launch")
    before = campaign.to_roles
    campaign.to_roles = ",".join(parse_roles(uow, roles)) if roles else None
    uow.session.flush()
    uow.audit.record("address", "marketing_campaign", campaign.id, before={"to_roles": before},
                     after={"to_roles": campaign.to_roles})
    return campaign


def _people(uow: UnitOfWork, campaign: Campaign, audience: Subquery) -> list[Any]:
    """The role-holders of the audience's companies with their address and both consents."""
    roles = campaign.to_roles.split(",") if campaign.to_roles else []
    addr = CONTACT_ADDRESS.get(campaign.channel)
    own = select(ContactConsent.contact_id, ContactConsent.status).where(ContactConsent.channel == campaign.channel).subquery()
    return list(uow.session.execute(
        select(Contact.id, Contact.customer_id, addr if addr is not None else literal(None), own.c.status)
        .outerjoin(own, own.c.contact_id == Contact.id)
        .where(Contact.customer_id.in_(select(audience.c.id)), type_coerce(Contact.role, String).in_(roles))
        .order_by(Contact.customer_id, Contact.id)).all())


def _person_reason(address: Any, own: str | None, company: str | None, needs: bool, channel: str) -> str | None:
    verdict = decide(own, company, needs)
    if not verdict.allowed:
        return verdict.reason
    if channel in CONTACT_ADDRESS and not address:
        return f"no {'email' if channel == 'email' else 'phone'}"
    return None


def _company_reason(persons: list[tuple[int, Any, str | None]], roles: str) -> str | None:
    """Why a company is suppressed: nobody with the roles, or nobody of them contactable."""
    if not persons:
        return f"no {roles} contact"[:100]
    return None if any(r is None for _c, _a, r in persons) else f"no contactable {roles}"[:100]


def launch_people(uow: UnitOfWork, campaign: Campaign, audience: Subquery, now: dt.datetime | None) -> dict[str, int]:
    """Materialise a role campaign: companies (holdout drawn per company), then their people."""
    from crm_marketing.services import settings

    companies = dict(uow.session.execute(
        select(Customer.id, Consent.status).outerjoin(Consent, and_(Consent.customer_id == Customer.id,
                                                                   Consent.channel == campaign.channel))
        .where(Customer.id.in_(select(audience.c.id))).order_by(Customer.id)).all())
    if not companies:
        raise Conflict(f"campaign {campaign.name!r}: its segments match no customer")
    needs = campaign.channel in settings(uow).consent_required
    persons: dict[int, list[tuple[int, Any, str | None]]] = {}
    for contact_id, customer_id, address, own in _people(uow, campaign, audience):
        reason = _person_reason(address, own, companies[customer_id], needs, campaign.channel)
        persons.setdefault(customer_id, []).append((contact_id, address, reason))
    ids = sorted(companies)
    roles = campaign.to_roles.replace(",", "/") if campaign.to_roles else ""
    reasons = [_company_reason(persons.get(i, []), roles) for i in ids]
    contactable = np.array([r is None for r in reasons])
    rng = np.random.default_rng(campaign.seed)
    draw, split = rng.random(len(ids)), rng.random(len(ids))
    control = contactable & (draw < campaign.control_share)
    variants = list(uow.session.scalars(select(Variant).where(Variant.campaign_id == campaign.id).order_by(Variant.id)))
    bounds = np.cumsum([v.share for v in variants]) if variants else np.array([])
    companies_out, people_out = [], []
    for i, cid in enumerate(ids):
        grp = "suppressed" if not contactable[i] else "control" if control[i] else "contact"
        variant_id = (variants[min(int(np.searchsorted(bounds, split[i], side="right")), len(variants) - 1)].id
                      if grp == "contact" and variants else None)
        companies_out.append({"campaign_id": campaign.id, "customer_id": cid, "grp": grp, "reason": reasons[i],
                              "variant_id": variant_id, "status": "pending" if grp == "contact" else "skipped",
                              "address": None})
        for contact_id, address, reason in persons.get(cid, []):
            pgrp = "control" if grp == "control" else "suppressed" if reason is not None or grp != "contact" else "contact"
            people_out.append({"campaign_id": campaign.id, "contact_id": contact_id, "customer_id": cid, "grp": pgrp,
                               "reason": reason if reason is not None else (reasons[i] if pgrp == "suppressed" else None),
                               "variant_id": variant_id, "status": "pending" if pgrp == "contact" else "skipped",
                               "address": address if pgrp == "contact" else None})
    uow.session.execute(insert(Target), companies_out)
    if people_out:
        uow.session.execute(insert(ContactTarget), people_out)
    campaign.status, campaign.launched_at = "running", now or utcnow()
    uow.session.flush()
    groups = [p["grp"] for p in people_out]
    counts = {"targeted": len(ids), "contact": int((contactable & ~control).sum()), "control": int(control.sum()),
              "suppressed": int((~contactable).sum()), "people_contact": groups.count("contact"),
              "people_control": groups.count("control"), "people_suppressed": groups.count("suppressed")}
    uow.audit.record("launch", "marketing_campaign", campaign.id, after={**counts, "to_roles": campaign.to_roles})
    return counts


# -- sending -------------------------------------------------------------------------------

def _claim(crm: CRM, actor: str, cid: int, n: int) -> list[int]:
    """Up to ``n`` pending people marked ``sending`` and committed (the same claim as companies')."""
    return delivery_claim(crm, actor, cid, n, ContactTarget, "contact_id")


def _release(crm: CRM, actor: str, cid: int, ids: list[int]) -> None:
    delivery_release(crm, actor, cid, ids, ContactTarget, "contact_id")


def _suppressed_now(uow: UnitOfWork, campaign: Campaign, t: ContactTarget) -> str | None:
    """Consent is asked again right before each message: a withdrawal since the launch wins."""
    from crm_marketing.services import settings

    customer = uow.session.get(Customer, t.customer_id)
    if customer is None or customer.archived:
        return "customer archived"
    own = uow.session.get(ContactConsent, (t.contact_id, campaign.channel))
    company = uow.session.get(Consent, (t.customer_id, campaign.channel))
    v = decide(own.status if own else None, company.status if company else None,
               campaign.channel in settings(uow).consent_required)
    return v.reason


def _company_status(uow: UnitOfWork, cid: int, customer_id: int) -> None:
    """The company's row follows its people: sent once anyone was, else what is still open."""
    statuses = set(uow.session.scalars(select(ContactTarget.status).where(
        ContactTarget.campaign_id == cid, ContactTarget.customer_id == customer_id, ContactTarget.grp == "contact")))
    status = next((s for s in ("sent", "sending", "pending", "failed") if s in statuses), "skipped")
    target = uow.session.get(Target, (cid, customer_id))
    if target is not None and target.status != status:
        target.status = "pending" if status == "sending" else status
        if status == "sent" and target.sent_at is None:
            target.sent_at = utcnow()


def _record(crm: CRM, actor: str, cid: int, contact_id: int, message: Message | None, error: str | None,
            skip: str | None) -> None:
    with crm.unit_of_work(actor=actor) as uow:
        t = uow.session.get(ContactTarget, (cid, contact_id))
        assert t is not None
        if skip is not None:
            t.status, t.reason = "skipped", skip[:100]
        elif error is not None or message is None:
            t.status, t.error = "failed", (error or "no message")[:500]
        else:
            interaction = uow.interactions.log(t.customer_id, InteractionCreate(
                channel=CORE_CHANNEL[message.channel],
                direction="outbound", kind="marketing", subject=(message.subject.strip() or message.campaign_name)[:200],
                source="marketing", source_ref=f"campaign:{cid}", external_ref=f"mkt-{cid}-{t.customer_id}-p{contact_id}"))
            t.status, t.sent_at, t.interaction_id, t.error = "sent", utcnow(), interaction.id, None
        uow.session.flush()
        _company_status(uow, cid, t.customer_id)


def _deliver(crm: CRM, actor: str, cid: int, contact_id: int, adapter: ChannelAdapter, result: SendResult) -> None:
    with crm.unit_of_work(actor=actor, read_only=True) as uow:
        campaign = uow.session.get(Campaign, cid)
        t = uow.session.get(ContactTarget, (cid, contact_id))
        assert campaign is not None and t is not None
        skip, message, error = _suppressed_now(uow, campaign, t), None, None
        if skip is None:
            try:
                message = _person_message(uow, campaign, t)
            except Exception as e:  # noqa: BLE001 - a template error fails this person, not the run
                error = e.args[0] if isinstance(e, CRMError) else f"template failed: {type(e).__name__}: {e}"
    if skip is None and message is not None:
        try:
            adapter.send(message)
        except Exception as e:  # noqa: BLE001 - the adapter refused this message: failed with its reason
            error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    _record(crm, actor, cid, contact_id, message, error, skip)
    if skip is not None:
        result.skipped += 1
    elif error is None:
        result.sent += 1
    else:
        result.failed += 1
        result.errors.append(f"contact {contact_id}: {error}")


def _person_message(uow: UnitOfWork, campaign: Campaign, t: ContactTarget) -> Message:
    message = _message(uow, campaign, cast(Target, t))  # a ContactTarget has a Target's fields
    message.contact_id = t.contact_id
    message.message_id = f"<mkt-{campaign.id}-{t.customer_id}-p{t.contact_id}@crm>"
    return message


def _settle_in_doubt(crm: CRM, actor: str, cid: int, adapter: ChannelAdapter, resend: bool, timeout_minutes: float,
                     result: SendResult) -> None:
    """People left ``sending`` by a killed run (older than the claim timeout): recorded as sent when
    the adapter knows they were, put back to pending when it knows they were not (or on request),
    else counted as in doubt and never resent blindly."""
    stale = utcnow() - dt.timedelta(minutes=timeout_minutes)
    with crm.unit_of_work(actor=actor, read_only=True) as uow:
        campaign = uow.session.get(Campaign, cid)
        assert campaign is not None
        messages: list[tuple[int, Message | None, str | None]] = []
        for t in uow.session.scalars(select(ContactTarget).where(
                ContactTarget.campaign_id == cid, ContactTarget.status == "sending", ContactTarget.claimed_at <= stale)):
            try:
                messages.append((t.contact_id, _person_message(uow, campaign, t), None))
            except Exception as e:  # noqa: BLE001 - the person fails with the reason below
                messages.append((t.contact_id, None, e.args[0] if isinstance(e, CRMError) else f"{type(e).__name__}: {e}"))
    for contact_id, message, error in messages:
        known = adapter.delivered(message) if message is not None else None
        if known:
            _record(crm, actor, cid, contact_id, message, None, None)
            result.settled += 1
        elif error is not None and resend:
            _record(crm, actor, cid, contact_id, None, error, None)
            result.failed += 1
        elif known is False or resend:
            _release(crm, actor, cid, [contact_id])
        else:
            result.in_doubt += 1


def send_people(crm: CRM, actor: str, cid: int, factory: Callable[[], ChannelAdapter], s: MarketingSettings, *,
                limit: int | None = None, progress: Callable[[int], None] | None = None,
                resend_in_doubt: bool = False) -> SendResult:
    """Deliver a role campaign's pending people, in claimed batches (the same guarantees as per company)."""
    adapter = factory()
    adapter.open()
    result = SendResult()
    try:
        _settle_in_doubt(crm, actor, cid, adapter, resend_in_doubt, s.claim_timeout_minutes, result)
        while limit is None or result.sent + result.failed < limit:
            want = s.send_batch if limit is None else min(s.send_batch, limit - result.sent - result.failed)
            todo = _claim(crm, actor, cid, want)
            if not todo:
                break
            try:
                while todo:
                    _deliver(crm, actor, cid, todo.pop(0), adapter, result)
                    if progress:
                        progress(1)
            finally:
                _release(crm, actor, cid, todo)
    finally:
        adapter.close()
    with crm.unit_of_work(actor=actor, read_only=True) as uow:
        result.pending = len(list(uow.session.scalars(select(ContactTarget.contact_id).where(
            ContactTarget.campaign_id == cid, ContactTarget.status == "pending"))))
    return result
