"""Leads: the five-factor assessment, statuses, conversion with matching, the learned score."""
from __future__ import annotations

from collections.abc import Callable

import crm_sales_automation.plugin as PLUGIN
import numpy as np
import pytest
from crm_sales_automation import scoring, services
from crm_sales_automation.models import Assessment, Conversion, Lead
from crm_sales_automation.schemas import FactorScore, LeadCreate, OpportunityCreate
from crm_sales_automation.testing import Sales
from sqlalchemy import func, select

from crmcore import CRM, ConfigError, Conflict, InvalidInput
from crmcore.models import Contact, Customer


def test_five_factor_score_is_explained_factor_by_factor(scrm: CRM, sales: Sales) -> None:
    lid = sales.lead("Jana", points={"need": 5, "volume": 4, "authority": 2})
    with scrm.unit_of_work() as uow:
        d = services.lead_detail(uow, lid)
    by = {a["factor"]: a for a in d["assessment"]}
    # default weights 25/20/20/15/20: need 25*5/5 + volume 20*4/5 + authority 20*2/5
    assert by["need"]["contribution"] == 25.0 and by["volume"]["contribution"] == 16.0
    assert by["authority"]["contribution"] == 8.0 and by["power"]["points"] is None and by["power"]["contribution"] == 0
    assert d["score"] == 49.0 == sum(a["contribution"] for a in d["assessment"])
    assert [a["weight"] for a in d["assessment"]] == [25, 20, 20, 15, 20]


def test_weights_come_from_the_settings(make_crm: Callable[..., CRM]) -> None:
    crm = make_crm(plugins=[PLUGIN], config={"sales_automation": {"weights": {"need": 1, "volume": 0, "power": 0,
                                                                             "credibility": 0, "authority": 1}}})
    lid = Sales(crm).lead("Jana", points={"need": 5, "volume": 5})
    with crm.unit_of_work() as uow:
        d = services.lead_detail(uow, lid)
    assert d["score"] == 50.0  # need counts half, volume nothing, authority not assessed
    with pytest.raises(ConfigError, match="weights"):
        make_crm(plugins=[PLUGIN], config={"sales_automation": {"weights": {"need": -1}}})
    with pytest.raises(ConfigError, match="unknown factor"):
        make_crm(plugins=[PLUGIN], config={"sales_automation": {"weights": {"charm": 3}}})


def test_assessment_rejects_bad_points_and_keeps_notes(scrm: CRM, sales: Sales) -> None:
    lid = sales.lead("Jana")
    with pytest.raises(ValueError):
        FactorScore(factor="need", points=6)
    with pytest.raises(ValueError):
        FactorScore(factor="luck", points=3)
    with scrm.unit_of_work() as uow:
        services.assess(uow, lid, [FactorScore(factor="need", points=3, note="old kitchen")])
    with scrm.unit_of_work() as uow:
        services.assess(uow, lid, [FactorScore(factor="need", points=4)])  # re-assessed, the note stays
        a = uow.session.scalar(select(Assessment).where(Assessment.lead_id == lid))
        assert (a.points, a.note) == (4, "old kitchen")
        with pytest.raises(InvalidInput):
            services.assess(uow, lid, [])


def test_a_lead_email_is_never_duplicated(scrm: CRM, sales: Sales) -> None:
    first = sales.lead("Jana", email="jana@alpine.example.com")
    with pytest.raises(Conflict, match=f"lead {first}"):
        sales.lead("J. Novak", email="JANA@alpine.example.com")
    with scrm.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Lead)) == 1
    with pytest.raises(ValueError, match="email"):
        LeadCreate(name="x", email="not-an-email")


def test_only_a_qualified_lead_is_converted(scrm: CRM, sales: Sales) -> None:
    new = sales.lead("New Lead")
    dis = sales.lead("Gone", status="disqualified")
    with scrm.unit_of_work() as uow, pytest.raises(Conflict, match="only a qualified lead"):
        services.convert(uow, new)
    with scrm.unit_of_work() as uow, pytest.raises(Conflict, match="disqualified"):
        services.convert(uow, dis)
    with scrm.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Customer)) == 0
        assert uow.session.scalar(select(func.count()).select_from(Conversion)) == 0
    with scrm.unit_of_work() as uow, pytest.raises(InvalidInput, match="through `crm sales lead convert`"):
        services.set_lead_status(uow, new, "converted")


def test_conversion_creates_customer_contact_and_opportunity(scrm: CRM, sales: Sales) -> None:
    lid = sales.lead("Jana Novak", company="Alpine Kitchens GmbH", email="jana@alpine.example.com", status="qualified")
    with scrm.unit_of_work("anna") as uow:
        r = services.convert(uow, lid, opportunity=OpportunityCreate(title="Kitchen", amount="12500"))
    assert r.customer_created and r.matched_by == "new" and r.opportunity_id
    with scrm.unit_of_work() as uow:
        c = uow.customers.get(r.customer_id)
        assert c.name == "Alpine Kitchens GmbH" and c.kind.value == "organization"
        contact = uow.session.get(Contact, r.contact_id)
        assert contact.name == "Jana Novak" and contact.email == "jana@alpine.example.com"
        lead = uow.session.get(Lead, lid)
        assert lead.status.value == "converted" and lead.customer_id == c.id
        conv = uow.session.scalars(select(Conversion)).all()
        assert [(x.customer_id, x.matched_by, x.converted_by, x.opportunity_id) for x in conv] == \
            [(c.id, "new", "anna", r.opportunity_id)]
        with pytest.raises(Conflict, match="already converted"):
            services.convert(uow, lid)


def test_a_person_lead_becomes_a_person_customer(scrm: CRM, sales: Sales) -> None:
    lid = sales.lead("Otto Meier", email="otto@example.com", phone="+4930123456", status="qualified")
    with scrm.unit_of_work() as uow:
        r = services.convert(uow, lid)
        c = uow.customers.get(r.customer_id)
        assert (c.kind.value, c.email, c.phone, r.contact_id) == ("person", "otto@example.com", "+4930123456", None)


def test_matching_by_email_or_phone_uses_the_existing_customer(scrm: CRM, sales: Sales) -> None:
    existing = sales.customer("Alpine Kitchens", email="info@alpine.example.com", phone="+4930111222")
    by_email = sales.lead("Jana", company="Alpine K.", email="INFO@alpine.example.com", status="qualified")
    by_phone = sales.lead("Piet", company="AK", phone="+4930111222", status="qualified")
    with scrm.unit_of_work() as uow:
        r1 = services.convert(uow, by_email)
        r2 = services.convert(uow, by_phone)
    assert (r1.customer_id, r1.matched_by, r1.customer_created) == (existing, "email", False)
    assert (r2.customer_id, r2.matched_by) == (existing, "phone")
    with scrm.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Customer)) == 1
        assert {c.name for c in uow.contacts.list(existing)} == {"Jana", "Piet"}


def test_a_name_match_is_shown_never_silently_used_or_duplicated(scrm: CRM, sales: Sales) -> None:
    existing = sales.customer("Alpine Kitchens GmbH")
    lid = sales.lead("Jana", company="ALPINE KITCHENS", status="qualified")
    with scrm.unit_of_work() as uow, pytest.raises(Conflict, match=rf"#{existing} Alpine Kitchens GmbH \(same name\).*--new"):
        services.convert(uow, lid)
    with scrm.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Customer)) == 1
        assert services.normalise_name("Alpine Kitchens GmbH") == services.normalise_name("alpine  kitchens") == "alpine kitchens"
    with scrm.unit_of_work() as uow:  # the user picks the match ...
        r = services.convert(uow, lid, customer_id=existing)
        assert (r.customer_id, r.matched_by) == (existing, "chosen")


def test_new_forces_a_new_customer(scrm: CRM, sales: Sales) -> None:
    existing = sales.customer("Alpine Kitchens", email="info@alpine.example.com")
    lid = sales.lead("Jana", company="Alpine Kitchens", email="info@alpine.example.com", status="qualified")
    with scrm.unit_of_work() as uow:
        r = services.convert(uow, lid, new=True)
    assert r.customer_created and r.customer_id != existing
    with scrm.unit_of_work() as uow, pytest.raises(InvalidInput):
        services.convert(uow, sales.lead("X", status="qualified"), customer_id=existing, new=True)


def test_conversion_refused_by_a_bad_opportunity_writes_nothing(scrm: CRM, sales: Sales) -> None:
    lid = sales.lead("Jana", company="Alpine", status="qualified")
    with pytest.raises(InvalidInput, match="unknown stage"), scrm.unit_of_work() as uow:
        services.convert(uow, lid, opportunity=OpportunityCreate(title="K", amount="10", stage="dreaming"))
    with scrm.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Customer)) == 0
        assert uow.session.get(Lead, lid).status.value == "qualified"


# -- learned score --------------------------------------------------------------------------------

def _history(sales: Sales, n: int = 30) -> None:
    """Referral leads with high need convert; cold calls with low need are disqualified."""
    for i in range(n):
        good = i % 3 != 0
        lid = sales.lead(f"L{i}", source="referral" if good else "cold_call", company="Co" if good else None,
                         points={"need": 5 if good else 1, "authority": 4 if i % 2 else 2}, status="qualified")
        with sales.crm.unit_of_work() as uow:
            if good:
                services.convert(uow, lid, new=True)
            else:
                services.set_lead_status(uow, lid, "disqualified")


def test_learned_score_is_fitted_explained_and_never_overwrites_the_assessment(scrm: CRM, sales: Sales) -> None:
    _history(sales)
    hot = sales.lead("Hot", source="referral", company="Big", points={"need": 5, "authority": 4})
    cold = sales.lead("Cold", source="cold_call", points={"need": 1, "authority": 2})
    with scrm.unit_of_work() as uow:
        before = {(a.lead_id, a.factor.value, a.points) for a in uow.session.scalars(select(Assessment))}
        out = services.learn_lead_scores(uow)
    assert out["samples"] == 30 and out["converted"] == 20 and out["scored"] == 2
    with scrm.unit_of_work() as uow:
        after = {(a.lead_id, a.factor.value, a.points) for a in uow.session.scalars(select(Assessment))}
        assert after == before
        h, c = services.lead_detail(uow, hot), services.lead_detail(uow, cold)
    assert h["learned_score"] > 90 and c["learned_score"] < 10
    assert h["score"] == 41.0  # the hand-set five-factor score is unchanged by learning
    ln = h["learned"]
    assert ln["score"] == h["learned_score"]
    logit = ln["prior_log_odds"] + sum(x["log_odds"] for x in ln["contributions"])
    assert abs(1 / (1 + np.exp(-logit)) * 100 - ln["score"]) < 0.2
    source = next(x for x in ln["contributions"] if x["field"] == "source")
    assert source["value"] == "referral" and source["log_odds"] > 0


def test_stored_parameters_reproduce_scikit_learn(scrm: CRM) -> None:
    from sklearn.naive_bayes import CategoricalNB

    rng = np.random.default_rng(3)
    X = np.column_stack([rng.integers(0, len(c), 200) for c in scoring.FIELDS.values()])
    y = (X[:, 3] + rng.integers(0, 3, 200) > 4).astype(int)
    params = scoring.fit(X, y)
    model = CategoricalNB(alpha=1.0, min_categories=[len(c) for c in scoring.FIELDS.values()]).fit(X, y)
    ours, _ = scoring.predict(params, X)
    assert np.allclose(ours, model.predict_proba(X)[:, 1])


def test_learning_needs_enough_closed_leads(scrm: CRM, sales: Sales) -> None:
    sales.lead("only one", status="disqualified")
    with scrm.unit_of_work() as uow, pytest.raises(InvalidInput, match="at least 10 closed leads"):
        services.learn_lead_scores(uow)
