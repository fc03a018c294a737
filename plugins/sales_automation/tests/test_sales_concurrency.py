"""Several `crm` processes (forked) winning and moving the same deal at once: one win, a consistent history."""
from __future__ import annotations

import contextlib
import io
import itertools
import multiprocessing
import subprocess
from typing import Any

import crm_sales_automation.plugin as PLUGIN
from crm_sales_automation.models import Opportunity, Stage, StageChange
from crm_sales_automation.testing import Sales
from sqlalchemy import select

from crmcore import CRM
from crmcore.models import AuditEntry


def _child(url: str, args: list[str], queue: Any) -> None:
    """One `crm` invocation in a forked process (the plugin registered in code); reports (exit code, stderr)."""
    from crmcore.cli import build_cli

    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            build_cli((PLUGIN,)).main(args=["--database", url, "--user", "rep", *args], prog_name="crm")
        except SystemExit as e:
            code = int(e.code or 0)
    queue.put((tuple(args), code, err.getvalue()))


def _run_all(crm_url: str, commands: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Start every command in its own process at once (fork: no re-import), wait for all."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(crm_url, cmd, queue)) for cmd in commands]
    for p in procs:
        p.start()
    got = [queue.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    by_cmd: dict[tuple[str, ...], list[tuple[int, str]]] = {}
    for args, code, err in got:
        by_cmd.setdefault(args, []).append((code, err))
    out = []
    for cmd in commands:
        code, err = by_cmd[tuple(cmd)].pop()
        out.append(subprocess.CompletedProcess(cmd, code, "", err))
    return out


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
    results = _run_all(crm_url, [["sales", "opp", "win", str(contested)] for _ in range(3)]
                       + [["sales", "opp", "move", str(moved), st] for st in stages]
                       + [["sales", "opp", "win", str(moved)]])
    wins = results[:3]
    assert sorted(r.returncode for r in wins) == [0, 1, 1], [(r.returncode, r.stderr) for r in wins]
    for r in wins:
        assert "Traceback" not in r.stderr
        assert r.returncode == 0 or r.stderr.strip() == f"error: opportunity {contested} is already won; a closed deal cannot be won"
    assert _history(scrm, contested) == [(None, "prospecting"), ("prospecting", "won")]
    with scrm.unit_of_work(read_only=True) as uow:
        audits = uow.session.scalars(select(AuditEntry.action).where(AuditEntry.entity == "sales.opportunity",
                                                                     AuditEntry.entity_id == str(contested))).all()
        assert sorted(audits) == ["create", "win"]

    # the moves and the win on the other deal: every change chains on the one before it
    hist = _history(scrm, moved)
    for (_, before), (frm, _) in itertools.pairwise(hist):
        assert frm == before
    ok_moves = [r for r in results[3:6] if r.returncode == 0]
    assert len(hist) == 1 + len(ok_moves) + (results[6].returncode == 0)
    for r in results[3:]:
        assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r.stderr
        if r.returncode == 1:
            assert "already won" in r.stderr or "already in stage" in r.stderr, r.stderr
    with scrm.unit_of_work(read_only=True) as uow:
        o = uow.session.get(Opportunity, moved)
        final = uow.session.get(Stage, o.stage_id).name
    assert final == hist[-1][1]
