"""Opportunities: stages and their history, win (with the published guard), loss, invoicing,
objections, activities, handover, merge, permissions and the 360° view."""
from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import crm_sales_automation.plugin as PLUGIN
import pytest
from crm_sales_automation import services
from crm_sales_automation.models import Activity, Lead, Opportunity, StageChange
from crm_sales_automation.schemas import (
    ActivityCreate,
    LeadCreate,
    ObjectionCreate,
    OpportunityCreate,
    OpportunityUpdate,
    QuotaSet,
)
from crm_sales_automation.testing import Sales
from sqlalchemy import func, select

from crmcore import CRM, Conflict, InvalidInput, NotFound, PermissionDenied, Veto, Vetoed, hookimpl
from crmcore.models import AuditEntry, Interaction, Transaction


class Recorder:
    """A small plugin implementing the published hooks: the guard refuses big deals; events are recorded."""

    PLUGIN_ID = "recorder"

    def __init__(self, limit: Decimal = Decimal(10000)) -> None:
        self.limit = limit
        self.events: list[tuple[Any, ...]] = []

    @hookimpl(optionalhook=True)
    def sales_before_opportunity_won(self, uow: Any, opportunity: Any) -> None:
        self.events.append(("guard", opportunity.id, opportunity.amount, opportunity.currency, opportunity.owner))
        if opportunity.amount > self.limit:
            raise Veto(f"exposure of customer {opportunity.customer_id} would exceed {self.limit}")

    @hookimpl(optionalhook=True)
    def sales_opportunity_won(self, uow: Any, opportunity: Any) -> None:
        self.events.append(("won", opportunity.id))

    @hookimpl(optionalhook=True)
    def sales_opportunity_lost(self, uow: Any, opportunity: Any, reason: str) -> None:
        self.events.append(("lost", opportunity.id, reason))

    @hookimpl(optionalhook=True)
    def sales_opportunity_stage_changed(self, uow: Any, opportunity: Any, from_stage: str, to_stage: str) -> None:
        self.events.append(("moved", opportunity.id, from_stage, to_stage))

    @hookimpl(optionalhook=True)
    def sales_lead_converted(self, uow: Any, lead: Any, customer_id: int, opportunity_id: int | None) -> None:
        self.events.append(("converted", lead.id, customer_id, opportunity_id))


class PostingGuard:
    PLUGIN_ID = "noinvoice"

    @hookimpl
    def crm_before_transaction_post(self, uow: Any, account: Any, entry: Any) -> None:
        raise Veto("customer is on credit hold")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def gcrm(make_crm: Callable[..., CRM], recorder: Recorder) -> CRM:
    return make_crm(plugins=[PLUGIN, recorder])


def _count(crm: CRM, model: Any) -> int:
    with crm.unit_of_work(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model)))


def test_default_pipeline_follows_the_selling_process(scrm: CRM) -> None:
    with scrm.unit_of_work() as uow:
        (p,) = services.list_pipelines(uow)
    assert p["name"] == "default" and p["default"]
    assert [(s["name"], s["probability"]) for s in p["stages"]] == [
        ("prospecting", 10), ("qualification", 20), ("approach", 30), ("presentation", 50),
        ("objection_handling", 60), ("closing", 80), ("won", 100), ("lost", 0)]
    assert p["stages"][3]["label"] == "presentation / demo"


def test_bad_opportunities_are_refused(scrm: CRM, sales: Sales) -> None:
    c = sales.customer("Acme")
    with pytest.raises(ValueError, match="must not be negative"):
        OpportunityCreate(title="x", amount="-5")
    with pytest.raises(InvalidInput, match="more than 2 decimal places"):
        sales.opp(c, amount="1.001")
    with pytest.raises(InvalidInput, match="whole number"):
        sales.opp(c, amount="10.5", currency="JPY")
    with pytest.raises(ValueError, match="currency"):
        OpportunityCreate(title="x", amount="1", currency="EURO")
    with pytest.raises(InvalidInput, match=r"unknown stage 'dreaming'.*prospecting"):
        sales.opp(c, stage="dreaming")
    with pytest.raises(NotFound, match="pipeline 'nope'"):
        sales.opp(c, pipeline="nope")
    with pytest.raises(InvalidInput, match="open stage"):
        sales.opp(c, stage="won")
    with pytest.raises(NotFound):
        sales.opp(9999)
    with pytest.raises(NotFound, match="user"):
        sales.opp(c, owner="ghost")
    assert _count(scrm, Opportunity) == 0


def test_every_stage_change_is_recorded(gcrm: CRM, recorder: Recorder) -> None:
    s = Sales(gcrm, actor="anna")
    oid = s.opp(s.customer("Acme"), "5000")
    s.move(oid, "qualification", "presentation")
    with gcrm.unit_of_work() as uow:
        d = services.opportunity_detail(uow, oid)
    assert [(h["from"], h["to"], h["by"]) for h in d["history"]] == [
        (None, "prospecting", "anna"), ("prospecting", "qualification", "anna"), ("qualification", "presentation", "anna")]
    assert d["history"][0]["at"] <= d["history"][1]["at"] <= d["history"][2]["at"]
    assert (d["stage"], d["probability"], d["weighted"]) == ("presentation", 50, Decimal("2500.00"))
    assert ("moved", oid, "qualification", "presentation") in recorder.events
    with gcrm.unit_of_work() as uow, pytest.raises(InvalidInput, match="unknown stage"):
        services.move(uow, oid, "heaven")
    with gcrm.unit_of_work() as uow, pytest.raises(Conflict, match="already in stage"):
        services.move(uow, oid, "presentation")
    with gcrm.unit_of_work() as uow, pytest.raises(InvalidInput, match="opp win"):
        services.move(uow, oid, "won")


def test_probability_is_the_stage_default_unless_set(scrm: CRM, sales: Sales) -> None:
    oid = sales.opp(sales.customer("Acme"), "1000")
    with scrm.unit_of_work() as uow:
        services.update_opportunity(uow, oid, OpportunityUpdate(probability=65))
    sales.move(oid, "closing")
    with scrm.unit_of_work() as uow:
        d = services.opportunity_detail(uow, oid)
    assert (d["probability"], d["probability_set"], d["weighted"]) == (65, True, Decimal("650.00"))
    with pytest.raises(ValueError):
        OpportunityUpdate(probability=101)


def test_a_closed_deal_cannot_be_moved_won_or_lost_again(gcrm: CRM) -> None:
    s = Sales(gcrm)
    c = s.customer("Acme")
    won, lost = s.opp(c, "100"), s.opp(c, "100")
    s.win(won)
    s.lose(lost, "budget cut")
    for oid in (won, lost):
        for action in (lambda u, o=oid: services.move(u, o, "closing"), lambda u, o=oid: services.win(u, o),
                       lambda u, o=oid: services.lose(u, o, "x"),
                       lambda u, o=oid: services.update_opportunity(u, o, OpportunityUpdate(amount="5"))):
            with gcrm.unit_of_work() as uow, pytest.raises(Conflict, match=r"already|closed deal"):
                action(uow)
    assert _count(gcrm, StageChange) == 4  # two creations, one win, one loss


def test_win_is_recorded_and_published(gcrm: CRM, recorder: Recorder) -> None:
    s = Sales(gcrm, actor="anna")
    s.user("anna")
    oid = s.opp(s.customer("Acme"), "9000", owner="anna")
    s.win(oid)
    with gcrm.unit_of_work() as uow:
        o = uow.session.get(Opportunity, oid)
        assert o.status.value == "won" and o.closed_at is not None and o.reached_position == 7
    assert recorder.events[0] == ("guard", oid, Decimal("9000.00"), "EUR", "anna")
    assert ("won", oid) in recorder.events and ("moved", oid, "prospecting", "won") in recorder.events
    assert _count(gcrm, Transaction) == 0  # invoice_on_win is off by default


def test_a_win_refused_by_the_guard_leaves_the_deal_open_and_writes_nothing(gcrm: CRM, recorder: Recorder) -> None:
    s = Sales(gcrm)
    oid = s.opp(s.customer("Acme"), "25000")
    changes, audits = _count(gcrm, StageChange), _count(gcrm, AuditEntry)
    with pytest.raises(Vetoed, match=r"recorder.*would exceed 10000"):
        s.win(oid)
    with gcrm.unit_of_work() as uow:
        o = uow.session.get(Opportunity, oid)
        assert o.status.value == "open" and o.closed_at is None and o.version == 1
    assert (_count(gcrm, StageChange), _count(gcrm, AuditEntry)) == (changes, audits)
    assert ("won", oid) not in recorder.events


def test_lost_needs_a_reason(gcrm: CRM, recorder: Recorder) -> None:
    s = Sales(gcrm)
    oid = s.opp(s.customer("Acme"), "100")
    for reason in ("", "   "):
        with gcrm.unit_of_work() as uow, pytest.raises(InvalidInput, match="needs a reason"):
            services.lose(uow, oid, reason)
    s.lose(oid, "  went with a competitor ")
    with gcrm.unit_of_work() as uow:
        o = uow.session.get(Opportunity, oid)
        assert (o.status.value, o.lost_reason) == ("lost", "went with a competitor")
    assert ("lost", oid, "went with a competitor") in recorder.events


def test_invoice_posts_through_the_core_once(scrm: CRM, sales: Sales) -> None:
    c = sales.customer("Acme")
    oid = sales.opp(c, "1234.50", currency="USD")
    with scrm.unit_of_work() as uow, pytest.raises(Conflict, match="only a won deal"):
        services.invoice(uow, oid)
    sales.win(oid)
    with scrm.unit_of_work() as uow:
        assert services.uninvoiced_won(uow, c, "USD") == Decimal("1234.50")
        assert uow.hooks.call("sales_uninvoiced_won", uow=uow, customer_id=c, currency="USD") == [Decimal("1234.50")]
        assert uow.hooks.call("sales_uninvoiced_won", uow=uow, customer_id=c, currency="EUR") == []
        entry, created = services.invoice(uow, oid)
    assert created and (entry.reference, entry.amount, entry.currency) == ("SALES-OPP-1", Decimal("1234.50"), "USD")
    with scrm.unit_of_work() as uow:
        _, again = services.invoice(uow, oid)
        assert not again
        assert services.uninvoiced_won(uow, c, "USD") == Decimal("0.00")
        (acc,) = uow.accounts.list(c)
        assert (acc.currency, acc.balance) == ("USD", Decimal("1234.50"))


def test_invoice_in_another_currency_opens_an_account(scrm: CRM, sales: Sales) -> None:
    from crmcore.schemas import TransactionCreate

    c = sales.customer("Acme")
    with scrm.unit_of_work() as uow:
        uow.accounts.post(c, TransactionCreate(kind="invoice", amount="10", reference="X1"))  # an EUR account
    oid = sales.opp(c, "50", currency="CHF")
    sales.win(oid)
    with scrm.unit_of_work() as uow:
        services.invoice(uow, oid)
        assert sorted((a.currency, a.balance) for a in uow.accounts.list(c)) == [("CHF", Decimal("50.00")), ("EUR", Decimal("10.00"))]


def test_invoice_on_win_setting_and_the_core_posting_guard(make_crm: Callable[..., CRM]) -> None:
    crm = make_crm(plugins=[PLUGIN], config={"sales_automation": {"invoice_on_win": True}})
    s = Sales(crm)
    c = s.customer("Acme")
    oid = s.opp(c, "700")
    s.win(oid)
    with crm.unit_of_work() as uow:
        o = uow.session.get(Opportunity, oid)
        assert o.invoice_ref == f"SALES-OPP-{oid}" and uow.accounts.list(c)[0].balance == Decimal("700.00")
    blocked = make_crm(plugins=[PLUGIN, PostingGuard()], config={"sales_automation": {"invoice_on_win": True}})
    other = s.opp(c, "300")
    with pytest.raises(Vetoed, match="credit hold"):
        Sales(blocked).win(other)
    with crm.unit_of_work() as uow:  # the whole win was rolled back with the refused invoice
        assert uow.session.get(Opportunity, other).status.value == "open"


def test_objections_are_typed_and_resolved(scrm: CRM, sales: Sales) -> None:
    oid = sales.opp(sales.customer("Acme"))
    with pytest.raises(ValueError):
        ObjectionCreate(kind="weather", description="rain")
    with scrm.unit_of_work() as uow:
        o = services.add_objection(uow, oid, ObjectionCreate(kind="price", description="too expensive"))
        services.resolve_objection(uow, o.id, "showed the total cost of ownership")
        d = services.opportunity_detail(uow, oid)
    assert d["objections"] == [{"id": o.id, "kind": "price", "description": "too expensive",
                                "handling": "showed the total cost of ownership", "method": None, "resolved": True,
                                "by": "system",
                                "at": d["objections"][0]["at"]}]


def test_completing_an_activity_logs_a_core_interaction(scrm: CRM, sales: Sales) -> None:
    c = sales.customer("Acme")
    oid = sales.opp(c)
    lead = sales.lead("Nobody yet")
    with scrm.unit_of_work() as uow:
        a = services.add_activity(uow, ActivityCreate(kind="demo", subject="product demo", due_at="2030-01-05"),
                                  opportunity_id=oid)
        b = services.add_activity(uow, ActivityCreate(kind="call", subject="first call"), lead_id=lead)
        with pytest.raises(InvalidInput, match="exactly one"):
            services.add_activity(uow, ActivityCreate(kind="call", subject="x"))
    with scrm.unit_of_work() as uow:
        done = services.complete_activity(uow, a.id, "went well")
        assert services.complete_activity(uow, b.id).interaction_id is None  # a lead has no timeline yet
    with scrm.unit_of_work() as uow:
        i = uow.session.get(Interaction, done.interaction_id)
        assert (i.customer_id, i.channel.value, i.kind, i.subject, i.outcome, i.source, i.source_ref) == \
            (c, "meeting", "sale", "product demo", "went well", "sales_automation", f"activity:{a.id}")
        with pytest.raises(Conflict, match="already done"):
            services.complete_activity(uow, a.id)
    with pytest.raises(ValueError):
        ActivityCreate(kind="party", subject="x")


def test_handover_moves_open_work_only(scrm: CRM, sales: Sales) -> None:
    sales.user("boss", "manager")
    sales.user("anna")
    sales.user("ben")
    boss = Sales(scrm, actor="boss")
    c = boss.customer("Acme")
    open_opp, won_opp = boss.opp(c, owner="anna"), boss.opp(c, owner="anna")
    boss.win(won_opp)
    lead = boss.lead("L", owner="anna")
    with scrm.unit_of_work("boss") as uow:
        services.add_activity(uow, ActivityCreate(kind="call", subject="x", owner="anna"), customer_id=c)
        counts = services.handover(uow, "anna", "ben")
    assert counts == {"leads": 1, "opportunities": 1, "activities": 1}
    with scrm.unit_of_work("boss") as uow:
        ben, anna = uow.users.id_for("ben"), uow.users.id_for("anna")
        assert uow.session.get(Opportunity, open_opp).owner_id == ben
        assert uow.session.get(Opportunity, won_opp).owner_id == anna  # history keeps who won it
        assert uow.session.get(Lead, lead).owner_id == ben
        with pytest.raises(NotFound):
            services.handover(uow, "anna", "ghost")
    with scrm.unit_of_work("anna") as uow, pytest.raises(PermissionDenied, match=r"sales\.handover"):
        services.handover(uow, "ben", "anna")


def test_a_viewer_cannot_move_a_deal(scrm: CRM, sales: Sales) -> None:
    sales.user("admin", "admin")
    sales.user("vera", "viewer")
    sales.user("sam", "sales")
    admin = Sales(scrm, actor="admin")
    oid = admin.opp(admin.customer("Acme"))
    for action in (lambda u: services.move(u, oid, "approach"), lambda u: services.win(u, oid),
                   lambda u: services.lose(u, oid, "x"), lambda u: services.add_lead(u, LeadCreate(name="x"))):
        with scrm.unit_of_work("vera") as uow, pytest.raises(PermissionDenied, match="user vera lacks sales"):
            action(uow)
    Sales(scrm, actor="sam").move(oid, "approach")
    with scrm.unit_of_work("sam") as uow:
        with pytest.raises(PermissionDenied, match=r"sales\.quota\.manage"):
            services.set_quota(uow, QuotaSet(owner="sam", period="2030-01", amount="1", currency="EUR"))
        assert uow.can("sales.opportunity.win") and not uow.can("sales.pipeline.manage")


def test_merge_repoints_every_sales_row(scrm: CRM, sales: Sales) -> None:
    a, b = sales.customer("Dup A"), sales.customer("Dup B")
    oid = sales.opp(a)
    lid = sales.lead("L", status="qualified")
    with scrm.unit_of_work() as uow:
        services.convert(uow, lid, customer_id=a)
        services.add_activity(uow, ActivityCreate(kind="visit", subject="v"), customer_id=a)
    with scrm.unit_of_work() as uow:
        counts = uow.customers.merge(a, b)
    assert counts["sales_opportunities"] == 1 and counts["sales_activities"] == 1
    assert counts["sales_leads"] == 1 and counts["sales_conversions"] == 1
    with scrm.unit_of_work() as uow:
        assert uow.session.get(Opportunity, oid).customer_id == b
        assert uow.session.scalar(select(Activity.customer_id)) == b


def test_customer_view_has_a_sales_section_and_timeline_entries(scrm: CRM, sales: Sales) -> None:
    c = sales.customer("Acme")
    o1, o2 = sales.opp(c, "1000", title="Kitchen"), sales.opp(c, "200", title="Tap", currency="USD")
    won, lost = sales.opp(c, "50", title="Small"), sales.opp(c, "60", title="Other")
    sales.move(o1, "closing")
    sales.win(won)
    sales.lose(lost, "too late")
    with scrm.unit_of_work() as uow:
        services.add_activity(uow, ActivityCreate(kind="call", subject="follow up", due_at="2030-03-01"), opportunity_id=o2)
    with scrm.unit_of_work(read_only=True) as uow:
        customer = uow.customers.get(c)
        (( _, section),) = uow.hooks.profile_sections(uow, customer)
        entries = services.timeline(uow, customer)
    assert section.title == "Sales" and section.fields["open opportunities"] == 2
    assert section.fields["weighted value"] == "800.00 EUR, 20.00 USD"
    assert section.fields["next activity"] == "2030-03-01 call: follow up"
    assert [r[1] for r in section.tables[0].rows] == ["Kitchen", "Tap"]
    assert sorted((e.kind, e.summary) for e in entries) == [("opportunity lost", "Other: too late"),
                                                            ("opportunity won", "Small: 50.00 EUR")]


def test_published_hookspecs_are_loaded_with_the_plugin(gcrm: CRM) -> None:
    assert gcrm.hooks.has_spec("sales_before_opportunity_won")
    assert SimpleNamespace
