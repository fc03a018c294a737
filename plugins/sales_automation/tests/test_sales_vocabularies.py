"""Lead sources and won/lost reasons as crm.toml vocabularies; the pipeline naming rule's message."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import crm_sales_automation.plugin as PLUGIN
import pytest
from crm_sales_automation import services
from crm_sales_automation.models import Lead, Opportunity
from crm_sales_automation.testing import Sales, assert_error
from sqlalchemy import select

from crmcore import CRM, InvalidInput

Run = Callable[..., Any]
SOURCES = ["referral", "advertising", "event", "web", "cold_call", "partner", "existing_customer", "other"]


def ok(res: Any) -> Any:
    assert res.exit_code == 0, (res.exit_code, res.output)
    return res


def toml(folder: Path, body: str) -> None:
    """crm.toml where the ``cli`` fixture runs (its working directory is the test's tmp_path)."""
    (folder / "crm.toml").write_text(body, encoding="utf-8")


def test_a_configured_lead_source_is_accepted_and_the_default_list_refuses_it(scrm: CRM, scli: Run, tmp_path: Path) -> None:
    refused = scli("sales", "lead", "add", "Jana", "--source", "badge_scan")
    assert_error(refused, "invalid input: source: 'badge_scan' is not allowed (allowed: referral, advertising, event, "
                          "web, cold_call, partner, existing_customer, other; configured in crm.toml [vocabularies] lead_sources)")
    toml(tmp_path, f'[vocabularies]\nlead_sources = {json.dumps([*SOURCES, "badge_scan"])}\n')
    lead = json.loads(ok(scli("sales", "lead", "add", "Jana", "--source", "Badge_Scan", "--campaign", "FAIR-2030",
                              "--json")).stdout)["id"]
    shown = json.loads(ok(scli("sales", "lead", "show", str(lead), "--json")).stdout)
    assert (shown["source"], shown["campaign"]) == ("badge_scan", "FAIR-2030")
    with scrm.unit_of_work(read_only=True) as uow:
        assert uow.session.scalar(select(Lead.source).where(Lead.id == lead)) == "badge_scan"
    # the word is in use: a crm.toml without it is refused by the next command, nothing written
    toml(tmp_path, f'[vocabularies]\nlead_sources = {json.dumps(SOURCES)}\n')
    assert_error(scli("sales", "lead", "add", "Otto", "--source", "web"),
                 "crm.toml [vocabularies] lead_sources: 'badge_scan' (1 row) in use in sales_leads.source cannot be "
                 "removed; add it back", code=2)
    with scrm.unit_of_work(read_only=True) as uow:
        assert uow.session.scalars(select(Lead.name)).all() == ["Jana"]


def test_a_malformed_vocabulary_table_is_one_line_exit_2(scrm: CRM, scli: Run, tmp_path: Path) -> None:
    toml(tmp_path, '[vocabularies]\nlead_source = ["web"]\n')
    res = scli("sales", "lead", "add", "Jana")
    assert_error(res, "crm.toml [vocabularies]: unknown vocabulary 'lead_source' (known: ", code=2)
    for name in ("contact_roles", "interaction_kinds", "lead_sources", "lost_reasons", "won_reasons"):
        assert name in res.stderr


def test_won_and_lost_reasons_are_vocabulary_words(scrm: CRM, sales: Sales, scli: Run, tmp_path: Path) -> None:
    cid = sales.customer("Acme")
    won, lost, other = sales.opp(cid, "100"), sales.opp(cid, "200"), sales.opp(cid, "300")
    ok(scli("sales", "opp", "win", str(won), "--reason", "relationship"))
    ok(scli("sales", "opp", "lose", str(lost), "--reason", "went with a rival", "--code", "competitor"))
    assert_error(scli("sales", "opp", "lose", str(other), "--reason", "x", "--code", "weather"),
                 "invalid input: code: 'weather' is not allowed (allowed: price, competitor, no_budget, no_decision, "
                 "timing, product_fit, other; configured in crm.toml [vocabularies] lost_reasons)")
    assert_error(scli("sales", "opp", "win", str(other), "--reason", "luck"),
                 "invalid input: reason: 'luck' is not allowed (allowed: price, quality, relationship, service, "
                 "product_fit, delivery, other; configured in crm.toml [vocabularies] won_reasons)")
    with scrm.unit_of_work(read_only=True) as uow:
        rows = {o.id: (o.status.value, o.won_reason, o.lost_reason_code, o.lost_reason)
                for o in uow.session.scalars(select(Opportunity))}
        assert services.opportunity_detail(uow, lost)["lost_reason_code"] == "competitor"
    assert rows == {won: ("won", "relationship", None, None), lost: ("lost", None, "competitor", "went with a rival"),
                    other: ("open", None, None, None)}  # the refused ones wrote nothing
    toml(tmp_path, '[vocabularies]\nlost_reasons = ["price", "weather"]\n')
    assert_error(scli("sales", "opp", "lose", str(other), "--reason", "rain", "--code", "weather"),
                 "'competitor' (1 row) in use in sales_opportunities.lost_reason_code", code=2)


def test_the_python_api_checks_the_words_too(make_crm: Callable[..., CRM]) -> None:
    crm = make_crm(plugins=[PLUGIN], config={"vocabularies": {"lost_reasons": ["price", "politics"]}})
    s = Sales(crm)
    oid = s.opp(s.customer("Acme"), "10")
    with crm.unit_of_work() as uow, pytest.raises(InvalidInput, match=r"'competitor' is not allowed \(allowed: price, politics;"):
        services.lose(uow, oid, "lost", code="competitor")
    with crm.unit_of_work() as uow:
        assert services.lose(uow, oid, "lost", code="politics").lost_reason_code == "politics"


@pytest.mark.parametrize(("argv", "message"), [
    (["My Pipe", "--stage", "offer=10"], "invalid input: name: 'My Pipe' is not a valid name (lowercase letters, digits "
                                         "and _, starting with a letter, at most 64 characters; e.g. 'my_pipe')"),
    (["b2b", "--stage", "intake=10", "--stage", "Demo Day=50"], "invalid input: stages.1.name: 'Demo Day' is not a valid "
                                                                 "name (lowercase letters"),
    (["b2b", "--stage", "1st=10"], "'1st' is not a valid name"),
])
def test_the_pipeline_naming_rule_names_the_wrong_name(scrm: CRM, scli: Run, argv: list[str], message: str) -> None:
    assert_error(scli("sales", "pipeline", "add", *argv), message)
    with scrm.unit_of_work(read_only=True) as uow:
        assert [p["name"] for p in services.list_pipelines(uow)] in ([], ["default"])
