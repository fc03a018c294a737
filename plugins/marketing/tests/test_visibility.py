"""An "own" user's segment counts and samples cover only their customers; campaign-wide reports
need ``marketing.report``: the same answer by the CLI, the Python API and the HTTP API."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import crm_marketing.plugin as PLUGIN
from crm_marketing import reporting, services
from fastapi.testclient import TestClient

from crmcore import CRM, PermissionDenied
from crmcore.api import create_app
from crmcore.api.auth import TokenService
from crmcore.schemas import CustomerCreate, UserCreate


def shop(make_crm: Callable[..., CRM], tmp_path: Any) -> tuple[CRM, dict[str, dict[str, str]]]:
    (tmp_path / "crm.toml").write_text('[visibility]\nsales = "own"\n')  # for the CLI (the cli fixture runs there)
    crm = make_crm(plugins=[PLUGIN], config={"visibility": {"sales": "own"}})
    with crm.unit_of_work("setup") as uow:
        for name, role in (("root", "admin"), ("anna", "sales"), ("bob", "sales"), ("mia", "marketing")):
            uow.users.add(UserCreate(username=name, display_name=name.title(), roles=[role]))
    with crm.unit_of_work("root") as uow:
        for owner, n in (("anna", 2), ("bob", 3)):
            for i in range(n):
                uow.customers.create(CustomerCreate(name=f"{owner} shop {i}", owner=owner, country="DE",
                                                    external_ref=f"{owner.upper()}{i}", email=f"{owner}{i}@example.com"))
        services.create_segment(uow, "de", rule='country = "DE"')
        tokens = {n: {"Authorization": f"Bearer {TokenService(uow).create(n, 't')[1]}"} for n in ("anna", "root")}
    return crm, tokens


def test_segment_preview_counts_only_visible_customers_by_every_face(make_crm: Callable[..., CRM],
                                                                      cli: Callable[..., Any], tmp_path: Any) -> None:
    crm, tokens = shop(make_crm, tmp_path)
    for user, expected in (("anna", 2), ("bob", 3), ("root", 5)):
        res = cli("marketing", "segment", "preview", "de", "--json", plugins=[PLUGIN], user=user)
        assert res.exit_code == 0, res.output
        out = json.loads(res.output)
        assert out["count"] == expected, (user, out)
        assert all(user == "root" or str(c.get("name", c)).startswith(user) for c in out.get("sample", [])), out
    with crm.unit_of_work("anna", read_only=True) as uow:
        assert services.preview(uow, services.segment_query(uow, services.get_segment(uow, "de")))[0] == 2
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    assert client.get("/marketing/segments/de/preview", headers=tokens["anna"]).json()["count"] == 2
    assert client.get("/marketing/segments/de/preview", headers=tokens["root"]).json()["count"] == 5


def test_campaign_report_needs_marketing_report_for_an_own_user(make_crm: Callable[..., CRM],
                                                                 cli: Callable[..., Any], tmp_path: Any) -> None:
    crm, tokens = shop(make_crm, tmp_path)
    res = cli("marketing", "campaign", "create", "Spring", "--channel", "email", "--segment", "de",
              plugins=[PLUGIN], user="root")
    assert res.exit_code == 0, res.output
    res = cli("marketing", "campaign", "report", "Spring", plugins=[PLUGIN], user="anna")
    assert res.exit_code == 1 and "lacks marketing.report" in res.stderr
    assert cli("marketing", "campaign", "report", "Spring", plugins=[PLUGIN], user="mia").exit_code == 0
    with crm.unit_of_work("anna", read_only=True) as uow:
        campaign = services.get_campaign(uow, "Spring")
        try:
            reporting.report(uow, campaign)
            raise AssertionError("an own user read a campaign-wide report")
        except PermissionDenied as e:
            assert "marketing.report" in str(e)
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    report_path = "/marketing/campaigns/Spring/report"
    assert client.get(report_path, headers=tokens["anna"]).status_code == 403
    assert client.get(report_path, headers=tokens["root"]).status_code == 200
