"""Issue 23 §3/§4 and issue 22 §2 seen from credit: ``crm credit check`` says the control mode
and who may pass a warning; the complaint factor asks the service plugin's published hook when
it is there; value_analysis's profit counts credit's write-offs and financing cost of late
payment through its published ``value_customer_costs``."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import crm_credit.plugin as CREDIT
import crm_service.hookspecs as service_specs  # installed by the project's set-up
import crm_value_analysis.plugin as VALUE
from crm_credit import scoring, services, value_costs
from crm_credit.schemas import WriteOffRequest
from crm_credit.settings import CreditSettings
from crm_credit.testing import Book, ago
from crm_value_analysis import services as value_services
from crm_value_analysis.models import CustomerValue
from sqlalchemy import select

from crmcore import CRM, hookimpl
from crmcore.schemas import InteractionCreate


def test_check_says_the_mode_and_who_may_pass(make_ccrm, ccli, monkeypatch) -> None:
    monkeypatch.setenv("CRM_CREDIT__MODE_BY_GROUP", '{"retail": "warn"}')
    crm = make_ccrm(mode_by_group={"retail": "warn"})
    book = Book(crm)
    a, b = book.customer("A"), book.customer("B")
    book.profile(a, limit=Decimal(100), credit_group="retail")
    book.profile(b, limit=Decimal(100))
    book.users(test=["admin"], sam=["manager"], cc=["credit_controller"])

    res = ccli("credit", "check", "A", "500", user="cc")
    assert res.exit_code == 0 and res.output.startswith("warning: credit check failed"), res.output
    assert "mode warn (group retail); credit.pass_warning is held by admin, credit_controller; cc holds it" in res.output
    res = ccli("credit", "check", "A", "500", "--json", user="sam")
    assert res.exit_code == 1, res.output
    out = json.loads(res.output)
    assert (out["mode"], out["mode_source"], out["actor_may_pass"], out["would_pass"]) == ("warn", "group retail", False, False)
    assert out["may_pass"] == ["admin", "credit_controller"]
    res = ccli("credit", "check", "B", "500", user="cc")  # block mode: nobody passes
    assert res.exit_code == 1 and res.output.startswith("refused:") and "mode block (default)" in res.output, res.output
    res = ccli("credit", "check", "B", "50", user="sam")
    assert res.exit_code == 0 and res.output.startswith("ok:") and "sam lacks it" in res.output, res.output


class FakeService:
    """The service plugin's published ``service_complaints`` answered with known complaint counts."""

    def __init__(self, complaints: dict[int, int]) -> None:
        self.complaints = complaints
        self.asked: list[tuple[list[int], Any, Any]] = []

    @hookimpl
    def crm_add_hookspecs(self, register: Any) -> None:
        register(service_specs)

    @hookimpl
    def service_complaints(self, uow: Any, customer_ids: list[int], since: Any, until: Any) -> dict[int, int]:
        self.asked.append((list(customer_ids), since, until))
        return {c: self.complaints[c] for c in customer_ids if self.complaints.get(c)}


def _complaints(crm: CRM) -> dict[int, float]:
    with crm.unit_of_work("test", read_only=True) as uow:
        ids, _, feats = scoring.compute_features(uow.session, CreditSettings(), ago(0).date(), uow=uow)
    return dict(zip(ids.tolist(), feats["complaints_12m"].tolist()))


def test_the_complaint_factor_asks_the_service_plugin_and_falls_back_to_interactions(make_crm) -> None:
    plain = make_crm(plugins=[CREDIT])
    book = Book(plain)
    a, b = book.customer("A"), book.customer("B")
    with plain.unit_of_work("test") as uow:
        for _ in range(2):
            uow.interactions.log(a, InteractionCreate(channel="phone", kind="complaint", subject="late delivery",
                                                      occurred_at=ago(10)))
    assert _complaints(plain) == {a: 2.0, b: 0.0}  # no service plugin: the complaint interactions
    fake = FakeService({b: 5})
    with_service = make_crm(plugins=[CREDIT, ("fake_service", fake)])
    assert _complaints(with_service) == {a: 0.0, b: 5.0}  # the service plugin's complaint tickets
    today = ago(0).date()
    # one call for the customers scored, over the lookback window ending on the as-of day
    assert fake.asked == [([a, b], today - dt.timedelta(days=CreditSettings().lookback_days), today)]


def test_value_profit_counts_credit_write_offs_and_late_payment(make_crm) -> None:
    crm = make_crm(plugins=[CREDIT, VALUE], config={"credit": {"financing_rate_percent": "10"}})
    book = Book(crm)
    a, b, c = book.customer("A"), book.customer("B"), book.customer("C")
    book.invoice(a, "1000.00", "IA", days_ago=100, due_days_ago=80)
    book.pay(a, "1000.00", "PA", days_ago=50, invoice="IA")  # 30 days late
    book.invoice(b, "500.00", "IB", days_ago=100, due_days_ago=70)
    book.invoice(c, "300.00", "IC", days_ago=20, due_days_ago=-10)
    book.pay(c, "300.00", "PC", days_ago=15, invoice="IC")  # on time
    with crm.unit_of_work("test") as uow:
        services.write_off(uow, b, WriteOffRequest(invoice="IB", amount=Decimal(200), reason="insolvent"))
    with crm.unit_of_work("test") as uow:
        value_services.run_analysis(uow, as_of=ago(0).date())
    with crm.unit_of_work("test") as uow:
        run = value_services.latest_run(uow)
        cost = dict(uow.session.execute(select(CustomerValue.customer_id, CustomerValue.cost_to_serve)
                                        .where(CustomerValue.run_id == run.id)).all())
        summary = run.summary
    # A: 1000 x 30 days late x 10% / 365; B: 200 written off, and the 300 still open overdue since
    # 70 days ago, to the end of the window (the end of today: 71 days)
    late_a = round(1000 * 30 * 0.10 / 365, 2)
    late_b = round(300 * 71 * 0.10 / 365, 2)
    assert abs(cost[a] - late_a) < 0.01 and abs(cost[b] - (200 + late_b)) < 0.01 and cost[c] == 0.0, cost
    sources = json.dumps(summary)
    assert "credit.write_offs" in sources and "credit.late_payment" in sources, summary


def test_no_rate_no_write_off_registers_nothing(make_crm) -> None:
    crm = make_crm(plugins=[CREDIT])
    book = Book(crm)
    a = book.customer("A")
    book.invoice(a, "100", "I1", days_ago=60, due_days_ago=30)
    seen: list[str] = []
    with crm.unit_of_work("test", read_only=True) as uow:
        value_costs.value_customer_costs(uow, [a], None, dt.date.today() + dt.timedelta(days=1),
                                         lambda source, costs: seen.append(source))
    assert seen == []
