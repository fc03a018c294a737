"""Segments, consent, campaigns and their launch. Functions of a unit of work: they flush, never commit.

Every write checks its ``marketing.*`` permission first and is audited through the core's log.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Select, delete, func, insert, literal, select, union, update

from crm_marketing.models import Campaign, CampaignSegment, Consent, CostLine, Response, Segment, SegmentMember, Target, Variant
from crm_marketing.schemas import CampaignCreate, ConsentSet, CostCreate, MarketingSettings
from crmcore.db.types import utcnow
from crmcore.errors import Conflict, InvalidInput, NotFound
from crmcore.models import Customer
from crmcore.schemas.fields import clean_text
from crmcore.sdk import text_problem, valid_id
from crmcore.uow import UnitOfWork

if TYPE_CHECKING:
    from crm_marketing import segments as rules

PLUGIN_ID = "marketing"


def settings(uow: UnitOfWork) -> MarketingSettings:
    return cast(MarketingSettings, uow.crm.settings(PLUGIN_ID))


def resolve_customer(uow: UnitOfWork, key: str) -> Customer:
    """A customer by external reference, ``#id``, or a bare id when no reference matches: the
    core's one resolver, visibility applied (an invisible customer is "not found" like a missing one)."""
    return uow.customers.resolve(str(key).strip())


# -- segments ------------------------------------------------------------------------------

def compile_context(uow: UnitOfWork) -> rules.CompileContext:
    from crm_marketing import segments as rules  # lark: only when a rule is compiled

    return rules.CompileContext(
        custom_fields={name: d.type for name, d in uow.crm.fields.fields.items()},
        value_columns=rules.value_columns(uow),  # value_analysis's published hook, not its tables
        default_currency=settings(uow).currency,
    )


def rule_query(uow: UnitOfWork, tree: dict[str, Any]) -> Select[Any]:
    from crm_marketing import segments as rules

    return rules.compile_rule(tree, compile_context(uow), uow.session.get_bind().dialect.name)


def get_segment(uow: UnitOfWork, name: str) -> Segment:
    if text_problem(str(name), 100):
        raise NotFound("segment", repr(str(name)[:40]))
    seg = uow.session.scalar(select(Segment).where(Segment.name == name))
    if seg is None:
        raise NotFound("segment", repr(name))
    return seg


def segment_query(uow: UnitOfWork, seg: Segment) -> Select[Any]:
    """The member ids: the compiled rule, or the stored members of a static or frozen segment."""
    if seg.kind == "static" or seg.frozen_at is not None:
        return (select(SegmentMember.customer_id.label("id")).join(Customer, Customer.id == SegmentMember.customer_id)
                .where(SegmentMember.segment_id == seg.id, Customer.archived.is_(False)))
    assert seg.rule_json is not None
    return rule_query(uow, seg.rule_json)


def create_segment(uow: UnitOfWork, name: str, rule: str | None = None, members: Sequence[str] = (),
                   description: str | None = None) -> Segment:
    """A rule segment (checked by compiling it) or a static list (``members``: customer keys)."""
    from crm_marketing import segments as rules

    uow.require("marketing.segment.write")
    name = str(name).strip()
    if not name or len(name) > 100:
        raise InvalidInput("invalid segment name: 1 to 100 characters", [("name", "length")])
    name = clean_text(name, "segment name", max_length=100, required=True) or name
    description = clean_text(description, "description", max_length=500, multiline=True)
    if rule is not None and members:
        raise InvalidInput("a segment is a rule or a static list, not both", [("rule", "both given")])
    if uow.session.scalar(select(Segment.id).where(Segment.name == name)) is not None:
        raise Conflict(f"segment {name!r} already exists")
    seg = Segment(name=name, kind="static" if rule is None else "rule", description=description, created_by=uow.actor)
    if rule is not None:
        tree = rules.parse(rule)
        rule_query(uow, tree)  # unknown fields and bad values fail here, before anything is stored
        seg.rule, seg.rule_json = rule.strip(), tree
    uow.session.add(seg)
    uow.session.flush()
    if members:
        add_members(uow, seg, members)
    uow.audit.record("create", "marketing_segment", seg.id, after={"name": name, "kind": seg.kind, "rule": seg.rule})
    return seg


def add_members(uow: UnitOfWork, seg: Segment, keys: Iterable[str]) -> int:
    uow.require("marketing.segment.write")
    if seg.kind != "static":
        raise Conflict(f"segment {seg.name!r} is a rule segment; members come from its rule")
    ids = sorted({resolve_customer(uow, k).id for k in keys})
    have = set(uow.session.scalars(select(SegmentMember.customer_id).where(SegmentMember.segment_id == seg.id)))
    new = [i for i in ids if i not in have]
    if new:
        uow.session.execute(insert(SegmentMember), [{"segment_id": seg.id, "customer_id": i} for i in new])
        uow.audit.record("add_members", "marketing_segment", seg.id, after={"customer_ids": new})
    return len(new)


def preview(uow: UnitOfWork, query: Select[Any], sample: int = 10) -> tuple[int, list[dict[str, Any]]]:
    """How many customers match, and the first few (by id) with their main fields."""
    if uow.visibility.own_only:  # an "own" user counts and sees only their customers
        inner = query.subquery()
        query = select(inner.c.id).where(inner.c.id.in_(uow.visibility.visible_ids()))
    sub = query.subquery()
    count = uow.session.scalar(select(func.count()).select_from(sub)) or 0
    if sample <= 0 or count == 0:
        return count, []
    rows = uow.session.execute(
        select(Customer.id, Customer.external_ref, Customer.name, Customer.country, Customer.email)
        .where(Customer.id.in_(select(sub.c.id))).order_by(Customer.id).limit(max(0, sample))
    ).all()
    return count, [dict(r._mapping) for r in rows]


def freeze(uow: UnitOfWork, seg: Segment) -> int:
    """Snapshot a rule segment's members (INSERT ... SELECT); later reads use the snapshot."""
    uow.require("marketing.segment.write")
    if seg.kind == "static":
        raise Conflict(f"segment {seg.name!r} is a static list; it is frozen by nature")
    if seg.frozen_at is not None:
        raise Conflict(f"segment {seg.name!r} was frozen at {seg.frozen_at:%Y-%m-%d %H:%M}; create a new segment for a new snapshot")
    q = segment_query(uow, seg).subquery()
    uow.session.execute(insert(SegmentMember).from_select(["segment_id", "customer_id"],
                                                           select(literal(seg.id), q.c.id)))
    seg.frozen_at = utcnow()
    n = uow.session.scalar(select(func.count()).where(SegmentMember.segment_id == seg.id)) or 0
    uow.audit.record("freeze", "marketing_segment", seg.id, after={"members": n})
    return n


def list_segments(uow: UnitOfWork) -> list[Segment]:
    return list(uow.session.scalars(select(Segment).order_by(Segment.name)))


# -- consent -------------------------------------------------------------------------------

def set_consent(uow: UnitOfWork, customer_id: int, data: ConsentSet) -> Consent:
    uow.require("marketing.consent.write")
    uow.customers.get(customer_id)
    return record_statement(uow, Consent, "customer", customer_id, data)


def record_statement(uow: UnitOfWork, model: Any, entity: str, entity_id: int, data: ConsentSet, **get: Any) -> Any:
    """Store one consent statement of a customer or a contact (``model`` keyed by (id, channel)):
    an older statement never replaces a newer one; audited with the value it replaced."""
    at = data.at or utcnow()
    row = uow.session.get(model, (entity_id, data.channel), **get)
    before = None if row is None else {"status": row.status, "at": row.at, "source": row.source}
    if row is None:
        row = model(**{f"{entity}_id": entity_id}, channel=data.channel, status=data.status, at=at, source=data.source)
        uow.session.add(row)
    elif row.at > at:
        raise Conflict(f"{entity} {entity_id} has a newer {data.channel} consent ({row.status} at {row.at:%Y-%m-%d %H:%M}); "
                       "an older statement cannot replace it")
    else:
        row.status, row.at, row.source = data.status, at, data.source
    uow.session.flush()
    uow.audit.record("consent", entity, entity_id, before=before and {data.channel: before},
                     after={data.channel: {"status": data.status, "at": at, "source": data.source}})
    return row


def consents(uow: UnitOfWork, customer_id: int) -> list[Consent]:
    uow.customers.get(customer_id)
    return list(uow.session.scalars(select(Consent).where(Consent.customer_id == customer_id).order_by(Consent.channel)))


# -- campaigns -----------------------------------------------------------------------------

def get_campaign(uow: UnitOfWork, key: str | int) -> Campaign:
    key_s = str(key).strip()
    if text_problem(key_s, 100):
        raise NotFound("campaign", repr(key_s[:40]))
    c = uow.session.scalar(select(Campaign).where(Campaign.name == key_s))
    digits = key_s.removeprefix("#")
    if c is None and digits.isascii() and digits.isdigit() and len(digits) <= 10 and valid_id(int(digits)):
        c = uow.session.get(Campaign, int(digits))
    if c is None:
        raise NotFound("campaign", repr(key_s))
    return c


def create_campaign(uow: UnitOfWork, data: CampaignCreate) -> Campaign:
    from crm_marketing.delivery import check_template

    uow.require("marketing.campaign.write")
    if uow.session.scalar(select(Campaign.id).where(Campaign.name == data.name)) is not None:
        raise Conflict(f"campaign {data.name!r} already exists")
    segs = [get_segment(uow, s) for s in data.segments]
    for label, text in (("subject", data.subject), ("body", data.body),
                        *[(f"variant {v.name} {k}", t) for v in data.variants for k, t in (("subject", v.subject), ("body", v.body))]):
        if text:
            check_template(text, label)
    s = settings(uow)
    c = Campaign(name=data.name, objective=data.objective, channel=data.channel, status="draft", budget=data.budget,
                 currency=data.currency or s.currency, starts_at=data.starts_at, ends_at=data.ends_at,
                 control_share=data.control_share, seed=data.seed, subject=data.subject, body=data.body,
                 attribution_days=data.attribution_days or s.attribution_days, price_offer=data.price_offer,
                 created_by=uow.actor)
    uow.session.add(c)
    uow.session.flush()
    uow.session.execute(insert(CampaignSegment), [{"campaign_id": c.id, "segment_id": seg.id} for seg in segs])
    if data.variants:
        uow.session.execute(insert(Variant), [{"campaign_id": c.id, **v.model_dump()} for v in data.variants])
    if data.to_roles:  # addressed to contacts by role (people_campaigns.py)
        from crm_marketing.people_campaigns import parse_roles

        c.to_roles = ",".join(parse_roles(uow, data.to_roles))
        uow.session.flush()
    uow.audit.record("create", "marketing_campaign", c.id, after=data.model_dump())
    return c


def add_cost(uow: UnitOfWork, campaign: Campaign, data: CostCreate) -> tuple[CostLine, bool]:
    """A cost line; the same reference again with the same amount is a no-op (counted once)."""
    uow.require("marketing.campaign.write")
    currency = data.currency or campaign.currency
    existing = uow.session.scalar(select(CostLine).where(CostLine.campaign_id == campaign.id, CostLine.reference == data.reference))
    if existing is not None:
        if existing.amount != data.amount or existing.currency != currency:
            raise Conflict(f"cost {data.reference!r} is already recorded as {existing.amount} {existing.currency}; "
                           "a correction needs a new reference")
        return existing, False
    line = CostLine(campaign_id=campaign.id, reference=data.reference, amount=data.amount, currency=currency,
                    description=data.description, incurred_at=data.incurred_at or utcnow())
    uow.session.add(line)
    uow.session.flush()
    uow.audit.record("cost", "marketing_campaign", campaign.id, after={"reference": data.reference, "amount": data.amount,
                                                                       "currency": currency})
    return line, True


def set_status(uow: UnitOfWork, campaign: Campaign, status: str) -> Campaign:
    uow.require("marketing.campaign.write")
    allowed = {"draft": {"scheduled", "cancelled"}, "scheduled": {"draft", "cancelled"},
               "running": {"completed", "cancelled"}, "completed": set(), "cancelled": set()}
    if status not in allowed[campaign.status]:
        raise Conflict(f"campaign {campaign.name!r} is {campaign.status}; it cannot become {status}"
                       + (" (launch it to run it)" if status == "running" else ""))
    before = campaign.status
    campaign.status = status
    uow.session.flush()
    uow.audit.record("status", "marketing_campaign", campaign.id, before={"status": before}, after={"status": status})
    return campaign


ADDRESS = {"email": Customer.email, "sms": Customer.phone, "phone": Customer.phone}


def launch(uow: UnitOfWork, campaign: Campaign, now: dt.datetime | None = None) -> dict[str, int]:
    """Materialise the audience: suppressed (consent, no address), control (seeded holdout), contact.

    Suppression comes first so that control and contacted customers are drawn from the same
    contactable population (a fair comparison for the lift). The holdout and the A/B split are
    drawn with NumPy's seeded generator over the audience sorted by id: reproducible.
    """
    import numpy as np  # only a launch needs it: `crm customer show` reads this module too

    uow.require("marketing.campaign.send")
    if campaign.status not in ("draft", "scheduled"):
        raise Conflict(f"campaign {campaign.name!r} is {campaign.status}; only a draft or scheduled campaign can be launched")
    seg_ids = list(uow.session.scalars(select(CampaignSegment.segment_id).where(CampaignSegment.campaign_id == campaign.id)))
    if not seg_ids:
        raise Conflict(f"campaign {campaign.name!r} has no segment; nobody to target")
    segs = [uow.session.get(Segment, i) for i in seg_ids]
    audience = union(*[segment_query(uow, s) for s in segs if s is not None]).subquery()
    if campaign.to_roles:  # addressed to people by buying-centre role (people_campaigns.py)
        from crm_marketing.people_campaigns import launch_people

        return launch_people(uow, campaign, audience, now)
    addr_col = ADDRESS.get(campaign.channel)
    consent = select(Consent.customer_id, Consent.status).where(Consent.channel == campaign.channel).subquery()
    rows = uow.session.execute(
        select(Customer.id, addr_col if addr_col is not None else literal(None), consent.c.status)
        .where(Customer.id.in_(select(audience.c.id)))
        .outerjoin(consent, consent.c.customer_id == Customer.id).order_by(Customer.id)
    ).all()
    if not rows:
        raise Conflict(f"campaign {campaign.name!r}: its segments match no customer")
    needs_opt_in = campaign.channel in settings(uow).consent_required
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    reasons: list[str | None] = []
    for _id, address, status in rows:
        if status in ("opt_out", "unsubscribed"):
            reasons.append(f"consent: {status}")
        elif needs_opt_in and status != "opt_in":
            reasons.append("consent: no opt-in")
        elif addr_col is not None and not address:
            reasons.append(f"no {'email' if campaign.channel == 'email' else 'phone'}")
        else:
            reasons.append(None)
    contactable = np.array([r is None for r in reasons])
    rng = np.random.default_rng(campaign.seed)
    draw = rng.random(len(ids))
    split = rng.random(len(ids))
    control = contactable & (draw < campaign.control_share)
    variants = list(uow.session.scalars(select(Variant).where(Variant.campaign_id == campaign.id).order_by(Variant.id)))
    bounds = np.cumsum([v.share for v in variants]) if variants else np.array([])
    out = []
    for i, (cid, address, _st) in enumerate(rows):
        grp = "suppressed" if not contactable[i] else "control" if control[i] else "contact"
        variant_id = None
        if grp == "contact" and variants:
            variant_id = variants[min(int(np.searchsorted(bounds, split[i], side="right")), len(variants) - 1)].id
        out.append({"campaign_id": campaign.id, "customer_id": int(cid), "grp": grp, "reason": reasons[i],
                    "variant_id": variant_id, "status": "pending" if grp == "contact" else "skipped",
                    "address": address if grp == "contact" else None})
    uow.session.execute(insert(Target), out)
    campaign.status = "running"
    campaign.launched_at = now or utcnow()
    uow.session.flush()
    counts = {"targeted": len(out), "contact": int((contactable & ~control).sum()), "control": int(control.sum()),
              "suppressed": int((~contactable).sum())}
    uow.audit.record("launch", "marketing_campaign", campaign.id, after=counts)
    return counts


def list_campaigns(uow: UnitOfWork) -> list[Campaign]:
    return list(uow.session.scalars(select(Campaign).order_by(Campaign.id)))


def campaign_segments(uow: UnitOfWork, campaign: Campaign) -> list[str]:
    return list(uow.session.scalars(select(Segment.name).join(CampaignSegment, CampaignSegment.segment_id == Segment.id)
                                    .where(CampaignSegment.campaign_id == campaign.id).order_by(Segment.name)))


# -- merge ---------------------------------------------------------------------------------

def merge_customer_rows(uow: UnitOfWork, source_id: int, target_id: int) -> dict[str, int]:
    """Re-point the plugin's rows; where both customers have a row with the same key, the target's wins."""
    s = uow.session
    counts: dict[str, int] = {}
    # rows whose primary key would collide: the target keeps its own
    s.execute(delete(Target).where(Target.customer_id == source_id, Target.campaign_id.in_(
        select(Target.campaign_id).where(Target.customer_id == target_id))))
    s.execute(delete(SegmentMember).where(SegmentMember.customer_id == source_id, SegmentMember.segment_id.in_(
        select(SegmentMember.segment_id).where(SegmentMember.customer_id == target_id))))
    # consent: where both have a statement for a channel, the newer one stands (an unsubscribe of
    # yesterday beats an opt-in of last year)
    both = {c.channel: c for c in s.scalars(select(Consent).where(Consent.customer_id == target_id))}
    for src in list(s.scalars(select(Consent).where(Consent.customer_id == source_id, Consent.channel.in_(list(both))))):
        tgt = both[src.channel]
        if src.at > tgt.at:
            tgt.status, tgt.at, tgt.source = src.status, src.at, src.source
        s.delete(src)
    s.flush()
    from crm_marketing.models import ContactTarget  # people of a role campaign follow their company

    for model in (Target, SegmentMember, Consent, Response, ContactTarget):
        res = s.execute(update(model).where(model.customer_id == source_id).values(customer_id=target_id))
        counts[model.__tablename__] = int(getattr(res, "rowcount", 0) or 0)
    return counts
