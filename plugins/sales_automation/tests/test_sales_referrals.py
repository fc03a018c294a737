""""Referred by" on leads and customers: every face, the refusals, the carry-over at conversion,
merges, the import column, and the count value_analysis's loyalty index gets through its hook."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import crm_sales_automation.plugin as PLUGIN
import pytest
from crm_sales_automation import services
from crm_sales_automation.models import Lead, Referral
from crm_sales_automation.schemas import LeadCreate, OpportunityCreate
from crm_sales_automation.testing import Sales, assert_error
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, update

from crmcore import CRM
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.errors import InvalidInput, NotFound

Run = Callable[..., Any]
UTC = dt.UTC


def _convert(crm: CRM, lead_id: int, **kw: Any) -> Any:
    with crm.unit_of_work() as uow:
        services.set_lead_status(uow, lead_id, "qualified")
        return services.convert(uow, lead_id, **kw)


def test_a_referred_lead_carries_its_referrer_to_the_customer_counted_once(sales: Sales, scrm: CRM) -> None:
    ref = sales.customer("Referrer Ltd", external_ref="R1")
    lead = sales.lead("Jana", company="Alpine Kitchens", referred_by=ref)
    other = sales.lead("Otto", referred_by=ref)
    conv = _convert(scrm, lead, new=True, opportunity=OpportunityCreate(title="Kitchen", amount="10"))
    with scrm.unit_of_work(read_only=True) as uow:
        assert services.lead_detail(uow, lead)["referred_by"] == ref
        d = services.referral_detail(uow, conv.customer_id)
        assert d["referred_by"]["customer_id"] == ref and d["referred_by"]["lead_id"] == lead
        mine = services.referral_detail(uow, ref)
        # two leads referred, one of them became a customer: 2 referrals, not 3
        assert (mine["referred_leads"], mine["referred_customers"], mine["referrals"]) == (2, 1, 2)
        section = services.profile_section(uow, uow.customers.get(conv.customer_id))
        assert section.fields["referred by"] == f"#{ref} Referrer Ltd"
        assert services.profile_section(uow, uow.customers.get(ref)).fields["referrals"] == "2 (2 leads, 1 customers)"
    assert other


def test_a_lead_converted_into_its_referrer_or_a_referred_customer_keeps_the_customers_referral(
        sales: Sales, scrm: CRM) -> None:
    ref, first, existing = sales.customer("Ref"), sales.customer("First"), sales.customer("Existing")
    with scrm.unit_of_work() as uow:
        services.set_referral(uow, existing, first)
    into_referrer = sales.lead("Someone at Ref", company="Ref", referred_by=ref)
    into_existing = sales.lead("Someone at Existing", company="Existing", referred_by=ref)
    assert _convert(scrm, into_referrer, customer_id=ref).customer_id == ref
    _convert(scrm, into_existing, customer_id=existing)
    with scrm.unit_of_work(read_only=True) as uow:
        assert uow.session.get(Referral, ref) is None  # never a self-referral
        assert uow.session.get(Referral, existing).referrer_id == first  # the customer's own referral stays
        assert services.referral_counts(uow, [ref, first], None, None) == {ref: 2, first: 1}


def test_refusals_are_one_line_and_write_nothing(sales: Sales, scrm: CRM, scli: Run) -> None:
    a, b = sales.customer("A Co", external_ref="A"), sales.customer("B Co", external_ref="B")
    with scrm.unit_of_work() as uow:
        with pytest.raises(InvalidInput, match="cannot refer itself"):
            services.set_referral(uow, a, a)
        with pytest.raises(NotFound, match="customer 999999 not found"):
            services.set_referral(uow, a, 999999)
        with pytest.raises(NotFound, match="customer 999999 not found"):
            services.add_lead(uow, LeadCreate(name="x", referred_by=999999))
    assert_error(scli("sales", "referral", "set", "A", "--by", "A"), "customer")
    assert "cannot refer itself" in scli("sales", "referral", "set", "A", "--by", "A").stderr
    assert_error(scli("sales", "referral", "set", "A", "--by", "NOPE"), "customer 'NOPE' not found")
    assert_error(scli("sales", "referral", "set", "A"), "give either --by REFERRER or --clear")
    assert_error(scli("sales", "lead", "add", "Jana", "--referred-by", "NOPE"), "not found")
    with scrm.unit_of_work(read_only=True) as uow:
        assert uow.session.scalars(select(Referral)).all() == [] and uow.session.scalars(select(Lead)).all() == []
    ok = scli("sales", "referral", "set", "A", "--by", "B", "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["referred_by"]["customer_id"] == b
    assert scli("sales", "referral", "set", "A", "--by", "B").stdout.strip() == f"customer {a} referred by customer {b} (B Co)"
    shown = json.loads(scli("customer", "show", "A", "--json").stdout)
    assert "referred by" in json.dumps(shown)
    assert scli("sales", "referral", "set", "A", "--clear").stdout.strip() == f"customer {a}: no referral"
    lead = scli("sales", "lead", "add", "Jana", "--referred-by", "B", "--json")
    lid = json.loads(lead.stdout)["id"]
    assert json.loads(scli("sales", "lead", "show", str(lid), "--json").stdout)["referred_by"] == b
    assert scli("sales", "lead", "update", str(lid), "--referred-by", "A").exit_code == 0
    assert json.loads(scli("sales", "lead", "show", str(lid), "--json").stdout)["referred_by"] == a


def test_an_own_user_cannot_refer_to_a_customer_they_cannot_see(make_crm: Callable[..., CRM], cli: Run,
                                                                tmp_path: Path) -> None:
    crm = make_crm(plugins=[PLUGIN], config={"visibility": {"sales": "own"}})
    s = Sales(crm)
    s.user("anna")
    s.user("bob")
    s.actor = "admin"
    mine, theirs = s.customer("Anna Co", owner="anna", external_ref="AC"), s.customer("Bob Co", owner="bob", external_ref="BC")
    with crm.unit_of_work("anna") as uow:
        with pytest.raises(NotFound, match=f"customer {theirs} not found"):
            services.set_referral(uow, mine, theirs)
        with pytest.raises(NotFound, match=f"customer {theirs} not found"):
            services.add_lead(uow, LeadCreate(name="x", referred_by=theirs))
    (tmp_path / "crm.toml").write_text('[visibility]\nsales = "own"\n')
    res = cli("sales", "referral", "set", "AC", "--by", f"#{theirs}", plugins=[PLUGIN], user="anna")
    assert_error(res, f"customer {theirs} not found")
    with crm.unit_of_work("admin") as uow:
        token = {"Authorization": f"Bearer {TokenService(uow).create('anna', 't')[1]}"}
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    r = client.put(f"/sales/customers/{mine}/referral", json={"referred_by": theirs}, headers=token)
    assert r.status_code == 404 and str(theirs) in r.json()["detail"]
    r = client.post("/sales/leads", json={"name": "Lena", "referred_by": theirs}, headers=token)
    assert r.status_code == 404
    assert client.get(f"/sales/customers/{theirs}/referral", headers=token).status_code == 404
    with crm.unit_of_work(read_only=True) as uow:
        assert uow.session.scalars(select(Referral)).all() == []


def test_http_routes(sales: Sales, scrm: CRM) -> None:
    a, b = sales.customer("A Co"), sales.customer("B Co")
    sales.user("anna")
    with scrm.unit_of_work("admin") as uow:
        token = {"Authorization": f"Bearer {TokenService(uow).create('anna', 't')[1]}"}
    client = TestClient(create_app(scrm), raise_server_exceptions=False)
    r = client.put(f"/sales/customers/{a}/referral", json={"referred_by": b}, headers=token)
    assert r.status_code == 200, r.text
    assert r.json()["referred_by"]["customer_id"] == b
    assert client.put(f"/sales/customers/{a}/referral", json={"referred_by": a}, headers=token).status_code == 422
    assert client.put(f"/sales/customers/{a}/referral", json={"referred_by": 999999}, headers=token).status_code == 404
    assert client.get(f"/sales/customers/{b}/referral", headers=token).json()["referred_customers"] == 1
    lead = client.post("/sales/leads", json={"name": "Lena", "referred_by": b}, headers=token)
    assert lead.status_code == 201 and lead.json()["referred_by"] == b
    patched = client.patch(f"/sales/leads/{lead.json()['id']}", json={"referred_by": a}, headers=token)
    assert patched.status_code == 200 and patched.json()["referred_by"] == a
    assert client.put(f"/sales/customers/{a}/referral", json={"referred_by": None}, headers=token).json()["referred_by"] is None


def test_merge_moves_referrals_and_drops_the_one_between_the_merged(sales: Sales, scrm: CRM) -> None:
    src, dst, x, y = (sales.customer(n) for n in ("Src", "Dst", "X", "Y"))
    lead = sales.lead("Lena", referred_by=src)
    with scrm.unit_of_work() as uow:
        services.set_referral(uow, dst, src)  # between the two merged: dropped
        services.set_referral(uow, x, src)    # src's referral of x becomes dst's
        services.set_referral(uow, src, y)    # src's own referrer: dst has none now, so it moves
    with scrm.unit_of_work() as uow:
        uow.customers.merge(src, dst)
    with scrm.unit_of_work(read_only=True) as uow:
        rows = {(r.customer_id, r.referrer_id) for r in uow.session.scalars(select(Referral))}
        assert rows == {(x, dst), (dst, y)}
        assert uow.session.get(Lead, lead).referred_by_id == dst


def test_import_column_and_export(sales: Sales, scrm: CRM, scli: Run, tmp_path: Path) -> None:
    r1 = sales.customer("Ref One", external_ref="R1")
    r2 = sales.customer("Ref Two")
    f = tmp_path / "leads.csv"
    f.write_text(f"external_ref,name,referred_by\nL1,Jana,R1\nL2,Otto,#{r2}\nL3,Ghost,NOPE\n", encoding="utf-8")
    res = scli("import", "leads", str(f))
    assert "2 inserted, 0 updated, 0 unchanged, 1 rejected" in res.output, res.output
    assert "unknown customer 'NOPE'" in res.output
    with scrm.unit_of_work(read_only=True) as uow:
        got = dict(uow.session.execute(select(Lead.external_ref, Lead.referred_by_id)).all())
    assert got == {"L1": r1, "L2": r2}
    out = scli("export", "leads")
    rows = {r["external_ref"]: r["referred_by"] for r in csv.DictReader(io.StringIO(out.stdout))}
    with scrm.unit_of_work(read_only=True) as uow:
        assert rows == {"L1": "R1", "L2": uow.customers.get(r2).external_ref}  # every customer has a reference
    back = tmp_path / "back.csv"
    back.write_text(out.stdout, encoding="utf-8")
    assert "0 inserted, 0 updated, 2 unchanged, 0 rejected" in scli("import", "leads", str(back)).output


def test_counts_follow_the_window(sales: Sales, scrm: CRM) -> None:
    ref = sales.customer("Ref")
    old, new = sales.lead("Old", referred_by=ref), sales.lead("New", referred_by=ref)
    c = sales.customer("Came alone")
    with scrm.unit_of_work() as uow:
        uow.session.execute(update(Lead).where(Lead.id == old).values(created_at=dt.datetime(2020, 5, 1, tzinfo=UTC)))
        services.set_referral(uow, c, ref, at=dt.datetime(2021, 3, 1, 23, 59, tzinfo=UTC))
    with scrm.unit_of_work(read_only=True) as uow:
        count = services.referral_counts
        assert count(uow, [ref], dt.date(2020, 1, 1), dt.date(2021, 1, 1)) == {ref: 1}
        assert count(uow, [ref], dt.date(2021, 3, 1), dt.date(2021, 3, 2)) == {ref: 1}
        assert count(uow, [ref], dt.date(2021, 3, 2), dt.date(2021, 4, 1)) == {ref: 0}
        assert count(uow, [ref, c], None, dt.date(2100, 1, 1)) == {ref: 3, c: 0}
    assert new


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4), st.booleans()), max_size=12))
def test_counts_match_a_recount(scrm: CRM, plan: list[tuple[int, int, bool]]) -> None:
    """Random referrals (customer referrals set directly, or leads converted into new customers)
    counted by the SQL equal a plain Python recount; refused self-referrals change nothing."""
    with scrm.unit_of_work() as uow:
        for model in (Referral, Lead):
            uow.session.execute(delete(model))
    s = Sales(scrm)
    ids = [s.customer(f"C{i}") for i in range(5)]
    expected = dict.fromkeys(ids, 0)
    referred: set[int] = set()
    for who, by, via_lead in plan:
        customer, referrer = ids[who], ids[by]
        if via_lead:
            lead = s.lead("P", referred_by=referrer)
            with scrm.unit_of_work() as uow:
                services.set_lead_status(uow, lead, "qualified")
                services.convert(uow, lead, new=True)
            expected[referrer] += 1
            continue
        try:
            with scrm.unit_of_work() as uow:
                services.set_referral(uow, customer, referrer)
        except InvalidInput:
            assert customer == referrer
            continue
        if customer in referred:
            expected = _recount(scrm, ids)
        else:
            referred.add(customer)
            expected[referrer] += 1
    with scrm.unit_of_work(read_only=True) as uow:
        assert services.referral_counts(uow, ids, None, None) == expected == _recount(scrm, ids)


def _recount(crm: CRM, ids: list[int]) -> dict[int, int]:
    with crm.unit_of_work(read_only=True) as uow:
        out = dict.fromkeys(ids, 0)
        for r in uow.session.scalars(select(Referral)):
            if r.referrer_id in out:
                out[r.referrer_id] += 1
        for lead in uow.session.scalars(select(Lead).where(Lead.referred_by_id.is_not(None))):
            # a lead's referral is counted once: the customer row it was carried to is not counted again
            carried = lead.customer_id is not None and uow.session.get(Referral, lead.customer_id)
            if not (carried and carried.lead_id == lead.id and carried.referrer_id == lead.referred_by_id):
                out[lead.referred_by_id] += 1
        return out


def test_parallel_referrals_of_one_customer_leave_one_row(scrm: CRM, crm_url: str) -> None:
    """Six processes set the referrer of the same two customers at the same instant: each ends
    with exactly one referral, by one of the referrers asked, and every process exits cleanly."""
    from crmcore.testing_concurrency import run_cli_in_processes

    s = Sales(scrm)
    targets = [s.customer(f"T{i}", external_ref=f"T{i}") for i in range(2)]
    refs = [s.customer(f"R{i}", external_ref=f"R{i}") for i in range(3)]
    commands = [["sales", "referral", "set", f"T{t}", "--by", f"R{r}"] for t in range(2) for r in range(3)]
    results = run_cli_in_processes(crm_url, commands, plugins=[PLUGIN])
    assert all(r.code == 0 and "Traceback" not in r.output for r in results), [(r.code, r.output) for r in results]
    with scrm.unit_of_work(read_only=True) as uow:
        rows = uow.session.scalars(select(Referral)).all()
        assert sorted(r.customer_id for r in rows) == targets and {r.referrer_id for r in rows} <= set(refs)
