"""Several `crm` processes (forked) winning and moving the same deal at once: one win, a consistent history."""
from __future__ import annotations

import itertools

import crm_sales_automation.plugin as PLUGIN
from crm_sales_automation.models import Opportunity, Stage, StageChange
from crm_sales_automation.testing import Sales
from sqlalchemy import select

from crmcore import CRM
from crmcore.models import AuditEntry
from crmcore.testing_concurrency import run_cli_in_processes


def _history(crm: CRM, oid: int) -> list[tuple[str | None, str]]:
    with crm.unit_of_work(read_only=True) as uow:
        names = dict(uow.session.execute(select(Stage.id, Stage.name)).all())
        return [(names.get(f), names[t]) for f, t in uow.session.execute(
            select(StageChange.from_stage_id, StageChange.to_stage_id).where(StageChange.opportunity_id == oid)
            .order_by(StageChange.id))]


def test_concurrent_wins_and_moves(scrm: CRM, crm_url: str) -> None:
    s = Sales(scrm)
    c = s.customer("Acme")
    contested, moved = s.opp(c, "500"), s.opp(c, "700")
    stages = ["qualification", "approach", "closing"]
    results = run_cli_in_processes(crm_url, [["sales", "opp", "win", str(contested)] for _ in range(3)]
                       + [["sales", "opp", "move", str(moved), st] for st in stages]
                       + [["sales", "opp", "win", str(moved)]], users="rep", plugins=[PLUGIN])
    wins = results[:3]
    assert sorted(r.code for r in wins) == [0, 1, 1], [(r.code, r.stderr) for r in wins]
    for r in wins:
        assert "Traceback" not in r.stderr
        assert r.code == 0 or r.stderr.strip() == f"error: opportunity {contested} is already won; a closed deal cannot be won"
    assert _history(scrm, contested) == [(None, "prospecting"), ("prospecting", "won")]
    with scrm.unit_of_work(read_only=True) as uow:
        audits = uow.session.scalars(select(AuditEntry.action).where(AuditEntry.entity == "sales.opportunity",
                                                                     AuditEntry.entity_id == str(contested))).all()
        assert sorted(audits) == ["create", "win"]

    # the moves and the win on the other deal: every change chains on the one before it
    hist = _history(scrm, moved)
    for (_, before), (frm, _) in itertools.pairwise(hist):
        assert frm == before
    ok_moves = [r for r in results[3:6] if r.code == 0]
    assert len(hist) == 1 + len(ok_moves) + (results[6].code == 0)
    for r in results[3:]:
        assert r.code in (0, 1) and "Traceback" not in r.stderr, r.stderr
        if r.code == 1:
            assert "already won" in r.stderr or "already in stage" in r.stderr, r.stderr
    with scrm.unit_of_work(read_only=True) as uow:
        o = uow.session.get(Opportunity, moved)
        final = uow.session.get(Stage, o.stage_id).name
    assert final == hist[-1][1]
