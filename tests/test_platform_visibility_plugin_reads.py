"""The plugins' reads give the same answer by every face, for an admin and for an "own" user.

For each read that had only a command (or a command option the route lacked), the ``--json``
document of ``crm …``, the Python service call and ``GET`` on its route are compared, as ``root``
(admin: sees everything) and as ``anna`` (sales, ``[visibility] sales = "own"``: sees her customers
only, totals too). A refusal is the same refusal by every face (the value reports need
``value.report``, which an "own" sales user lacks): one ``error:`` line and exit 1, the same words
in the problem document, the same exception in Python. A bad query value is a 422.

The data is small: two sales users each owning two customers with a few invoices, a deal, a lead,
an activity, a quota and a ticket; one dunning pass, one campaign, one value analysis run.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import crm_credit.plugin as CREDIT
import crm_marketing.plugin as MARKETING
import crm_sales_automation.plugin as SALES
import crm_service.plugin as SERVICE
import crm_value_analysis.plugin as VALUE
import pytest
from crm_credit import dunning
from crm_credit import reports as credit_reports
from crm_credit import services as credit
from crm_marketing import reporting
from crm_marketing import services as marketing
from crm_marketing.schemas import CampaignCreate
from crm_sales_automation import analytics
from crm_sales_automation import services as sales
from crm_sales_automation.schemas import ActivityCreate, LeadCreate, OpportunityCreate, QuotaSet
from crm_service import tickets, visits
from crm_service.schemas import TicketOpen
from crm_value_analysis import services as value
from fastapi.testclient import TestClient

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.schemas import AccountCreate, CustomerCreate, TransactionCreate, UserCreate
from crmcore.sdk import jsonable

PLUGINS = (CREDIT, MARKETING, SALES, SERVICE, VALUE)
OWNERS = ("anna", "bob")
TODAY = dt.datetime.now(dt.UTC).date()
FROM, TO = TODAY - dt.timedelta(days=89), TODAY
CAL_END, HOLD_END = TODAY - dt.timedelta(days=120), TODAY - dt.timedelta(days=1)
#: purchases per customer (days ago): different rhythms, so the models have something to fit
RHYTHMS = ((400, 330, 260, 190, 100, 40), (380, 200, 20), (350, 300, 250, 200, 150, 90, 60, 10), (300, 150))


def _at(days_ago: int) -> dt.datetime:
    return dt.datetime.combine(TODAY - dt.timedelta(days=days_ago), dt.time(12), tzinfo=dt.UTC)


class World:
    """root (admin); anna and bob (sales, "own"), each owning two customers with their data."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        self.customers: dict[str, list[int]] = {o: [] for o in OWNERS}
        with crm.unit_of_work("setup") as uow:
            uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
            for name in OWNERS:
                uow.users.add(UserCreate(username=name, display_name=name.title(), roles=["sales"]))
        with crm.unit_of_work("root") as uow:
            for n, owner in enumerate(OWNERS * 2):
                self._customer(uow, owner, n)
            marketing.create_segment(uow, "regulars", members=[f"{o}-{i}" for o in OWNERS for i in range(2)])
            marketing.create_campaign(uow, CampaignCreate(name="spring", channel="email", segments=["regulars"],
                                                          budget=Decimal("120.50"), currency="EUR"))
            for owner in OWNERS:
                sales.set_quota(uow, QuotaSet(owner=owner, period=f"{TODAY:%Y-%m}", amount=Decimal("5000"), currency="EUR"))
                sales.add_lead(uow, LeadCreate(name=f"{owner} lead", owner=owner))
            self.headers = {n: {"Authorization": f"Bearer {TokenService(uow).create(n, 't')[1]}"} for n in ("root", *OWNERS)}
        with crm.unit_of_work("root") as uow:
            dunning.run(uow)
            value.run_analysis(uow, settings=value.settings_for(uow, {}))
        self.client = TestClient(create_app(crm), raise_server_exceptions=False)

    def _customer(self, uow: Any, owner: str, n: int) -> None:
        i = len(self.customers[owner])
        cid = uow.customers.create(CustomerCreate(name=f"{owner} shop {i}", owner=owner, external_ref=f"{owner}-{i}")).id
        self.customers[owner].append(cid)
        uow.accounts.open(cid, AccountCreate(currency="EUR", payment_terms_days=30, is_default=True))
        for k, days in enumerate(RHYTHMS[n]):
            uow.accounts.post(cid, TransactionCreate(kind="invoice", amount=Decimal(100 + 37 * k + 11 * n), reference=f"I{cid}-{k}",
                                                     occurred_at=_at(days), category="hardware" if k % 2 else "software"))
        uow.accounts.post(cid, TransactionCreate(kind="payment", amount=Decimal("50"), reference=f"P{cid}",
                                                 occurred_at=_at(5), applies_to=f"I{cid}-0"))
        opp = sales.add_opportunity(uow, cid, OpportunityCreate(title=f"{owner} deal {i}", amount=Decimal(1000 + n), owner=owner))
        sales.add_activity(uow, ActivityCreate(kind="call", subject=f"call {owner} {i}", owner=owner, due_at=_at(2)),
                           opportunity_id=opp.id)
        if i == 1:
            sales.win(uow, opp.id)
        tickets.open_ticket(uow, cid, TicketOpen(subject=f"{owner} problem {i}", team="support" if i else None))


@pytest.fixture
def world(make_crm: Callable[..., CRM], tmp_path: Any) -> World:
    (tmp_path / "crm.toml").write_text('[visibility]\nsales = "own"\n')  # the cli fixture runs in tmp_path
    return World(make_crm(plugins=list(PLUGINS), config={"visibility": {"sales": "own"}}))


@dataclass(frozen=True)
class Read:
    """One read: the command's words, the route and its query, the service call."""

    cli: tuple[str, ...]
    path: str
    python: Callable[[Any, World], Any]
    params: dict[str, Any] = field(default_factory=dict)
    both_owners: bool = True  # root's answer names both anna's and bob's data


def _campaign(uow: Any) -> dict[str, Any]:
    c = marketing.get_campaign(uow, "spring")
    return {"id": c.id, "name": c.name, "objective": c.objective, "channel": c.channel, "status": c.status,
            "budget": c.budget, "currency": c.currency, "starts_at": c.starts_at, "ends_at": c.ends_at,
            "control_share": c.control_share, "seed": c.seed, "segments": marketing.campaign_segments(uow, c),
            "attribution_days": c.attribution_days, "price_offer": c.price_offer, "subject": c.subject,
            "launched_at": c.launched_at}


def _cross_sell(uow: Any) -> dict[str, Any]:
    total, rows = reporting.cross_sell(uow, "software", "services", 10)
    return {"bought": "software", "not_bought": "services", "count": total, "customers": rows}


def _profile(uow: Any, w: World) -> dict[str, Any]:
    cid = w.customers["anna"][0]
    data = credit_reports.profile_data(uow, cid)
    data["history"] = [{"at": h.at, "actor": h.actor, "action": h.action, "before": h.before, "after": h.after,
                        "reason": h.reason} for h in credit.history(uow, cid)]
    return data


READS: dict[str, Read] = {
    "credit aging --limit": Read(("credit", "aging", "--limit", "1"), "/credit/aging",
                                 lambda uow, w: credit_reports.ageing(uow, credit.today(), None), {"limit": 1}),
    "credit dso": Read(("credit", "dso", "--from", str(FROM), "--to", str(TO)), "/credit/dso",
                       lambda uow, w: credit_reports.dso(uow, FROM, TO, None), {"from": str(FROM), "to": str(TO)}),
    "credit dunning list": Read(("credit", "dunning", "list", "--all"), "/credit/dunning",
                                lambda uow, w: dunning.listing(uow, True), {"all": "true"}),
    "credit profile show --history": Read(("credit", "profile", "show", "anna-0", "--history"), "/credit/customers/{anna0}",
                                          _profile, {"history": "true"}, both_owners=False),
    "marketing campaign show": Read(("marketing", "campaign", "show", "spring"), "/marketing/campaigns/spring",
                                    lambda uow, w: _campaign(uow), both_owners=False),
    "marketing cross-sell": Read(("marketing", "cross-sell", "--bought", "software", "--not-bought", "services", "--limit", "10"),
                                 "/marketing/cross-sell", lambda uow, w: _cross_sell(uow),
                                 {"bought": "software", "not_bought": "services", "limit": 10}),
    "sales activity due": Read(("sales", "activity", "due", "--until", str(TODAY)), "/sales/activities/due",
                               lambda uow, w: sales.due_activities(uow, until=TODAY), {"until": str(TODAY)}),
    "sales activity due --owner": Read(("sales", "activity", "due", "--owner", "bob"), "/sales/activities/due",
                                       lambda uow, w: sales.due_activities(uow, owner="bob"), {"owner": "bob"}, both_owners=False),
    "sales quota list": Read(("sales", "quota", "list"), "/sales/quotas", lambda uow, w: sales.list_quotas(uow)),
    "sales report performance": Read(("sales", "report", "performance"), "/sales/reports/performance",
                                     lambda uow, w: analytics.performance(uow)),
    "sales report pipeline": Read(("sales", "report", "pipeline", "--by", "owner", "--rate", "USD=0.5", "--to", "EUR"),
                                  "/sales/reports/pipeline",
                                  lambda uow, w: analytics.weighted_pipeline(uow, "owner", analytics.parse_rates(["USD=0.5"], "EUR")),
                                  {"by": "owner", "rate": ["USD=0.5"], "to": "EUR"}),
    "sales report probabilities": Read(("sales", "report", "probabilities"), "/sales/reports/probabilities",
                                       lambda uow, w: analytics.learned_probabilities(uow), both_owners=False),
    "sales report stale": Read(("sales", "report", "stale", "--days", "1", "--as-of", str(TODAY)), "/sales/reports/stale",
                               lambda uow, w: analytics.stale(uow, 1, as_of=TODAY), {"days": 1, "as_of": str(TODAY)}),
    "sales lead list --owner": Read(("sales", "lead", "list", "--owner", "anna"), "/sales/leads",
                                    lambda uow, w: sales.list_leads(uow, owner="anna"), {"owner": "anna"}, both_owners=False),
    "sales opp list --status --limit": Read(("sales", "opp", "list", "--status", "all", "--limit", "10"), "/sales/opportunities",
                                            lambda uow, w: sales.list_opportunities(uow, status=None, limit=10),
                                            {"status": "all", "limit": 10}),
    "sales opp list --owner --pipeline --stage": Read(
        ("sales", "opp", "list", "--owner", "anna", "--pipeline", "default", "--stage", "prospecting"), "/sales/opportunities",
        lambda uow, w: sales.list_opportunities(uow, owner="anna", pipeline="default", stage="prospecting"),
        {"owner": "anna", "pipeline": "default", "stage": "prospecting"}, both_owners=False),
    "sales opp list --customer": Read(("sales", "opp", "list", "--customer", "anna-1", "--status", "won"), "/sales/opportunities",
                                      lambda uow, w: sales.list_opportunities(uow, status="won", customer_id=w.customers["anna"][1]),
                                      {"customer_id": "{anna1}", "status": "won"}, both_owners=False),
    "sales forecast --learned --rate --to": Read(
        ("sales", "forecast", "--by", "owner", "--learned", "--rate", "USD=0.5", "--to", "EUR"), "/sales/forecast",
        lambda uow, w: analytics.forecast(uow, "owner", learned=True, conversion=analytics.parse_rates(["USD=0.5"], "EUR")),
        {"by": "owner", "learned": "true", "rate": ["USD=0.5"], "to": "EUR"}),
    "service ticket list --team --assignee": Read(
        ("service", "ticket", "list", "--team", "support"), "/service/tickets",
        lambda uow, w: [tickets.as_dict(uow, t) for t in tickets.list_tickets(uow, team="support", limit=100)], {"team": "support"}),
    "service ticket list --customer": Read(
        ("service", "ticket", "list", "--customer", "anna-0", "--assignee", "nobody"), "/service/tickets",
        lambda uow, w: [tickets.as_dict(uow, t) for t in tickets.list_tickets(uow, assignee="nobody", customer_id=w.customers["anna"][0])],
        {"customer_id": "{anna0}", "assignee": "nobody"}, both_owners=False),
    "service visit due": Read(("service", "visit", "due", "--agent", "anna", "--within-days", "30"), "/service/visits/due",
                              lambda uow, w: visits.due(uow, agent="anna", within_days=30), {"agent": "anna", "within_days": 30},
                              both_owners=False),
    "value runs": Read(("value", "runs"), "/value/runs", lambda uow, w: [r.model_dump() for r in value.list_runs(uow)],
                       both_owners=False),
    "value churn": Read(("value", "churn", "--limit", "10"), "/value/churn", lambda uow, w: value.churn_report(uow, limit=10),
                        {"limit": 10}, both_owners=False),
    "value loyalty": Read(("value", "loyalty", "--limit", "10"), "/value/loyalty", lambda uow, w: value.loyalty_report(uow, limit=10),
                          {"limit": 10}),
    "value clv --by": Read(("value", "clv", "--by", "deterministic", "--limit", "10"), "/value/clv",
                           lambda uow, w: value.clv_report(uow, limit=10, by="deterministic"), {"by": "deterministic", "limit": 10}),
    "value fit": Read(("value", "fit", "--calibration-end", str(CAL_END), "--model", "bg_nbd"), "/value/fit",
                      lambda uow, w: value.fit_models(uow, CAL_END, value.settings_for(uow, {}), model="bg_nbd"),
                      {"calibration_end": str(CAL_END), "model": "bg_nbd"}, both_owners=False),
    "value validate": Read(("value", "validate", "--calibration-end", str(CAL_END), "--holdout-end", str(HOLD_END),
                            "--model", "bg_nbd"), "/value/validate",
                           lambda uow, w: value.validate_models(uow, CAL_END, HOLD_END, value.settings_for(uow, {}), model="bg_nbd"),
                           {"calibration_end": str(CAL_END), "holdout_end": str(HOLD_END), "model": "bg_nbd"}, both_owners=False),
}


def normal(value: Any) -> Any:
    """A JSON document with timestamps parsed (the API writes UTC as ``Z``, the CLI as ``+00:00``)
    and fitting times dropped (``seconds``: how long a fit took, different on every call)."""
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [normal(v) for v in value]
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value


def _fill(w: World, text: str) -> str:
    return text.format(**{f"{o}{i}": cid for o in OWNERS for i, cid in enumerate(w.customers[o])})


def by_cli(cli: Callable[..., Any], user: str, read: Read) -> tuple[str, Any]:
    res = cli(*read.cli, "--json", user=user)
    if res.exit_code == 0:
        return "ok", normal(json.loads(res.output))
    lines = res.output.strip().splitlines()
    assert res.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: "), res.output
    return "refused", lines[0].removeprefix("error: ")


def by_http(w: World, user: str, read: Read) -> tuple[str, Any]:
    params = {k: _fill(w, v) if isinstance(v, str) else v for k, v in read.params.items()}
    res = w.client.get(_fill(w, read.path), params=params, headers=w.headers[user])
    if res.status_code == 200:
        return "ok", normal(res.json())
    assert 400 <= res.status_code < 500 and res.status_code != 422, res.text  # a refusal, never a bad request here
    return "refused", res.json()["detail"]


def by_python(w: World, user: str, read: Read) -> tuple[str, Any]:
    try:
        with w.crm.unit_of_work(user, read_only=True) as uow:
            out = read.python(uow, w)
            return "ok", normal(json.loads(json.dumps(jsonable(out))))
    except Exception as e:  # noqa: BLE001  (the refusal's words are compared with the other faces')
        return "refused", str(e)


def _mentions(w: World, text: str, owner: str) -> bool:
    """Whether a JSON text names the owner, their customers' names or ids."""
    ids = "|".join(str(c) for c in w.customers[owner])
    return owner in text or re.search(rf'"customer_id": ({ids})\b', text) is not None


@pytest.mark.parametrize("user", ["root", "anna"])
def test_every_face_gives_the_same_answer(world: World, cli: Callable[..., Any], user: str) -> None:
    """For each read: CLI --json == Python == HTTP; anna's never names bob's data; root's names both."""
    wrong = []
    for name, read in READS.items():
        faces = {"cli": by_cli(cli, user, read), "http": by_http(world, user, read), "python": by_python(world, user, read)}
        if not faces["cli"] == faces["http"] == faces["python"]:
            wrong.append(f"{name}: {faces}")
            continue
        kind, doc = faces["http"]
        text = json.dumps(doc, default=str)
        if user == "anna" and kind == "ok" and _mentions(world, text, "bob"):
            wrong.append(f"{name}: anna sees bob's data: {text[:300]}")
        if user == "root" and read.both_owners and not (kind == "ok" and all(_mentions(world, text, o) for o in OWNERS)):
            wrong.append(f"{name}: the admin's answer should cover both owners: {text[:300]}")
    assert not wrong, "\n".join(wrong)


def test_the_own_user_sees_only_their_share(world: World, cli: Callable[..., Any]) -> None:
    """Not just agreement: anna's lists and totals are hers, the whole-base value reports are refused,
    and a filter naming another owner's customer is "not found"."""
    def ok(user: str, key: str) -> Any:
        kind, doc = by_http(world, user, READS[key])
        assert kind == "ok", doc
        return doc
    anna_ids = set(world.customers["anna"])
    assert {r["customer_id"] for r in ok("anna", "credit dunning list")} <= anna_ids
    assert {r["customer_id"] for r in ok("root", "credit dunning list")} - anna_ids
    assert [r["customer_id"] for r in ok("anna", "credit dso")["customers"]] == sorted(anna_ids) or \
        {r["customer_id"] for r in ok("anna", "credit dso")["customers"]} == anna_ids
    anna_open = sum(Decimal(t["open"]) for t in ok("anna", "credit aging --limit")["totals"])
    all_open = sum(Decimal(t["open"]) for t in ok("root", "credit aging --limit")["totals"])
    assert 0 < anna_open < all_open
    assert {r["owner"] for r in ok("anna", "sales quota list")} == {"anna"}
    assert {r["owner"] for r in ok("root", "sales quota list")} == set(OWNERS)
    assert ok("anna", "sales activity due --owner") == []  # bob's activities are on bob's customers
    assert {r["id"] for r in ok("anna", "marketing cross-sell")["customers"]} <= anna_ids
    for key in ("value runs", "value churn", "value loyalty", "value clv --by", "value fit", "value validate"):
        assert by_http(world, "anna", READS[key]) == ("refused", "user anna lacks value.report"), key
    # a customer filter naming a customer anna may not see answers as for a missing one
    for path in ("/credit/dso?customer_id={bob0}", "/sales/opportunities?customer_id={bob0}",
                 "/service/tickets?customer_id={bob0}", "/credit/customers/{bob0}?history=true"):
        res = world.client.get(_fill(world, path), headers=world.headers["anna"])
        assert res.status_code == 404, (path, res.text)
        assert res.json()["detail"] == f"customer {world.customers['bob'][0]} not found", path
        assert world.client.get(_fill(world, path), headers=world.headers["root"]).status_code == 200, path


def test_the_quota_command_applies_visibility(world: World, cli: Callable[..., Any]) -> None:
    read = READS["sales quota list"]
    assert by_cli(cli, "anna", read) == by_http(world, "anna", read) == by_python(world, "anna", read)


BAD_QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("/credit/aging", {"limit": -1}), ("/credit/dso", {"from": "yesterday"}), ("/credit/dso", {"to": "0001-01-02"}), ("/credit/dso", {"customer_id": 0}),
    ("/credit/dunning", {"all": "maybe"}), ("/marketing/cross-sell", {"bought": "a"}),
    ("/marketing/cross-sell", {"bought": "a", "not_bought": "a"}), ("/marketing/cross-sell", {"bought": "a", "not_bought": "b", "limit": -1}),
    ("/sales/activities/due", {"until": "2026-13-01"}), ("/sales/reports/pipeline", {"by": "colour"}),
    ("/sales/reports/pipeline", {"rate": "USD=0.5"}), ("/sales/reports/stale", {"days": 0}),
    ("/sales/leads", {"owner": ""}), ("/sales/opportunities", {"status": "any"}), ("/sales/opportunities", {"limit": 0}),
    ("/sales/opportunities", {"customer_id": "x"}), ("/sales/forecast", {"learned": "maybe"}),
    ("/sales/forecast", {"rate": "USD=-1", "to": "EUR"}), ("/service/tickets", {"customer_id": 0}),
    ("/service/visits/due", {"within_days": 366}), ("/value/churn", {"limit": -1}), ("/value/clv", {"by": "magic"}),
    ("/value/fit", {}), ("/value/fit", {"calibration_end": "2020-01-01", "model": "nope"}),
    ("/value/validate", {"calibration_end": "2020-01-01"}),
    ("/value/validate", {"calibration_end": str(CAL_END), "holdout_end": str(CAL_END)}),
]


def test_a_bad_query_value_is_422(world: World) -> None:
    """Each bad query value (one world for them all: they write nothing) is a 422 problem document."""
    wrong = []
    for path, params in BAD_QUERIES:
        res = world.client.get(path, params=params, headers=world.headers["root"])
        if res.status_code != 422 or not res.headers["content-type"].startswith("application/problem+json"):
            wrong.append(f"{path} {params}: {res.status_code} {res.text[:200]}")
    assert not wrong, "\n".join(wrong)


