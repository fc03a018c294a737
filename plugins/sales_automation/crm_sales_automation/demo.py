"""Demo data for ``make demo``: a year of leads and deals on the customers and reps already there.

Everything goes through the services (so permissions, guards, hooks and the audit log apply),
one unit of work per lead or deal; afterwards the timestamps are spread over the year before
``as_of`` (today by default; ``make demo`` passes the demo ledger's date so its tour reads the
same on any day), so the forecast, funnel, learned probabilities and stale report have something
to show. A win another plugin refuses (e.g. credit) leaves that deal open.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select, update

from crm_sales_automation import services
from crm_sales_automation.enums import Factor, LeadSource
from crm_sales_automation.models import Activity, Assessment, Conversion, Lead, Opportunity, StageChange
from crm_sales_automation.schemas import ActivityCreate, FactorScore, LeadCreate, OpportunityCreate
from crmcore import CRM, CRMError
from crmcore.db.types import utcnow
from crmcore.models import Customer, User
from crmcore.schemas import CustomerCreate
from crmcore.uow import UnitOfWork

TITLES = ("Kitchen", "Bathroom refit", "Flooring", "Lighting plan", "Garden room", "Storage wall", "Paint job")
OPEN_STAGES = ("prospecting", "qualification", "approach", "presentation", "objection_handling", "closing")


@dataclass
class DemoResult:
    leads: int = 0
    converted: int = 0
    deals: int = 0
    won: int = 0
    lost: int = 0
    refused: int = 0


def generate(crm: CRM, *, deals: int = 200, leads: int = 60, seed: int = 42, actor: str = "demo",
             as_of: dt.date | None = None) -> DemoResult:
    rng = np.random.default_rng(seed)
    out = DemoResult()
    now = utcnow() if as_of is None else dt.datetime.combine(as_of, dt.time(12), tzinfo=dt.UTC)
    with crm.unit_of_work(actor) as uow:
        customers = list(uow.session.scalars(select(Customer.id).where(Customer.archived.is_(False)).order_by(Customer.id).limit(500)))
        if not customers:
            customers = [uow.customers.create(CustomerCreate(name=f"Demo customer {i}")).id for i in range(20)]
        reps: list[str | None] = [u.username for u in uow.session.scalars(select(User).where(User.active).order_by(User.id))
                if {"sales", "manager"} & set(u.roles or [])] or [None]
    # leads: the good ones (referrals, high need and authority) tend to convert; each is dated in
    # the 120 days before `now` (its assessment, status change and conversion a few days later)
    for i in range(leads):
        born = now - dt.timedelta(days=int(rng.integers(1, 121)), hours=int(rng.integers(0, 10)))
        good = rng.random() < 0.5
        source = str(rng.choice(["referral", "event", "existing_customer"] if good else ["cold_call", "advertising", "web"]))
        pts = {f.value: int(np.clip(rng.normal(4 if good else 2, 1), 0, 5)) for f in Factor}
        with crm.unit_of_work(actor) as uow:
            lead = services.add_lead(uow, LeadCreate(name=f"Lead {i + 1}", company=f"Prospect {i + 1} Ltd" if good else None,
                                                     source=LeadSource(source), owner=reps[i % len(reps)],
                                                     external_ref=f"DEMO-L{i + 1}"))
            services.assess(uow, lead.id, [FactorScore(factor=f, points=p) for f, p in pts.items()])
            out.leads += 1
            u = rng.random()
            if u >= 0.35:  # else still new
                services.set_lead_status(uow, lead.id, "qualified" if (good and u < 0.8) or u < 0.5 else "disqualified")
                if lead.status.value == "qualified" and rng.random() < 0.7:
                    services.convert(uow, lead.id, customer_id=int(rng.choice(customers)))
                    out.converted += 1
            _date_lead(uow, lead.id, born, min(born + dt.timedelta(days=int(rng.integers(1, 15))), now))
    # deals: created over the year before `now`; older ones closed (about 40 % won)
    for _ in range(deals):
        age = int(rng.integers(1, 365))
        created = now - dt.timedelta(days=age, hours=int(rng.integers(0, 10)))
        furthest = int(rng.integers(0, len(OPEN_STAGES)))
        closes = age > 45 and rng.random() < 0.75
        wins = closes and rng.random() < 0.25 + 0.1 * furthest
        amount = f"{float(np.round(rng.lognormal(8.3, 0.8), -1)):.2f}"
        owner = reps[int(rng.integers(0, len(reps)))]
        close_day = (created + dt.timedelta(days=int(rng.integers(20, 150)))).date()
        if not closes:  # an open deal's expected close is still ahead (a slipped deal has been moved on)
            close_day = max(close_day, (now + dt.timedelta(days=int(rng.integers(7, 120)))).date())
        with crm.unit_of_work(actor) as uow:
            opp = services.add_opportunity(uow, int(rng.choice(customers)), OpportunityCreate(
                title=str(rng.choice(TITLES)), amount=amount, owner=owner, expected_close=close_day))
            oid = opp.id
            for stage in OPEN_STAGES[1:furthest + 1]:
                services.move(uow, oid, stage)
            if not closes:
                services.add_activity(uow, ActivityCreate(kind=str(rng.choice(["call", "visit", "email", "demo"])),
                                                          subject="follow up", owner=owner,
                                                          due_at=now + dt.timedelta(days=int(rng.integers(-10, 20)))),
                                      opportunity_id=oid)
            else:  # a visit before the decision, logged on the customer's timeline
                visit = services.add_activity(uow, ActivityCreate(kind="visit", subject="on-site meeting", owner=owner),
                                              opportunity_id=oid)
                services.complete_activity(uow, visit.id, "discussed the offer",
                                           at=created + dt.timedelta(days=min(age, 200) / 2))
                if not wins:
                    services.lose(uow, oid, str(rng.choice(["price", "went with a competitor", "no budget", "timing"])))
                    out.lost += 1
        if closes and wins:
            try:
                with crm.unit_of_work(actor) as uow:
                    services.win(uow, oid)
                out.won += 1
            except CRMError:  # a guard (credit) refused: the deal stays open
                out.refused += 1
        out.deals += 1
        _spread(crm, actor, oid, created, min(age, 200), rng)
    return out


def _date_lead(uow: UnitOfWork, lead_id: int, born: dt.datetime, worked: dt.datetime) -> None:
    """Date a demo lead: created at ``born``; assessed, qualified and converted at ``worked``."""
    uow.session.flush()
    uow.session.execute(update(Lead).where(Lead.id == lead_id).values(created_at=born, updated_at=worked))
    uow.session.execute(update(Assessment).where(Assessment.lead_id == lead_id).values(assessed_at=worked))
    uow.session.execute(update(Conversion).where(Conversion.lead_id == lead_id).values(converted_at=worked))


def _spread(crm: CRM, actor: str, oid: int, created: dt.datetime, span_days: int, rng: np.random.Generator) -> None:
    """Backdate a deal: creation, its stage changes in order over ``span_days``, its closing."""
    with crm.unit_of_work(actor) as uow:
        ids = uow.session.scalars(select(StageChange.id).where(StageChange.opportunity_id == oid).order_by(StageChange.id)).all()
        offsets = np.sort(rng.uniform(0, max(span_days, 1), len(ids)))
        offsets[0] = 0
        times = [created + dt.timedelta(days=float(o)) for o in offsets]
        for sid, t in zip(ids, times):
            uow.session.execute(update(StageChange).where(StageChange.id == sid).values(changed_at=t))
        opp = uow.session.get(Opportunity, oid)
        values = {"created_at": created, "updated_at": times[-1]}
        if opp is not None and opp.closed_at is not None:
            values["closed_at"] = times[-1]
        uow.session.execute(update(Opportunity).where(Opportunity.id == oid).values(**values))
        uow.session.execute(update(Activity).where(Activity.opportunity_id == oid).values(created_at=created))
