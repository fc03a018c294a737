"""Consent per person: ``crm import consent`` (the core bulk path) vs one service call per person.

The issue measured one ``crm marketing consent set`` CLI call per customer at ~1.9 s (start-up
included). Ours = ``crm import consent FILE`` in-process (the same code as the command, without
the interpreter start-up) for every contact; baseline = :func:`crm_marketing.people.set_contact_consent`
in one unit of work per person (what a script calling the service per person does, no start-up),
timed on a sample and reported per row. Both on the same data, in the same run.

    python bench/consent_bench.py [--orgs 2000] [--per-org 3] [--sample 300] [--pg URL] [--print-only]

Writes the "consent_bench" section of bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section


def _crm(url: str) -> Any:
    from crm_marketing import plugin

    from crmcore import CRM

    return CRM.open(url, plugins=[plugin], entry_points=False, create=True, config={})


def prepare(url: str, orgs: int, per_org: int) -> None:
    """A fresh schema with ``orgs`` organisations and ``per_org`` contacts each (raw inserts)."""
    from sqlalchemy import create_engine, insert, text

    from crmcore.models import Contact, Customer

    if url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    crm = _crm(url)
    crm.upgrade()
    with crm.engine.begin() as conn:
        conn.execute(insert(Customer), [{"kind": "organization", "name": f"Org {i}", "search_name": f"org {i}",
                                         "external_ref": f"O{i:06d}", "tags": [], "attributes": {}} for i in range(orgs)])
        conn.execute(insert(Contact), [{"customer_id": i + 1, "name": f"Person {i}-{j}", "role": "decider",
                                        "email": f"p{i}-{j}@x.example", "external_ref": f"P{i:06d}-{j}"}
                                       for i in range(orgs) for j in range(per_org)])
    crm.close()


def run(url: str, orgs: int, per_org: int, sample: int) -> dict[str, float]:
    from click.testing import CliRunner
    from crm_marketing import people, plugin
    from crm_marketing.schemas import ConsentSet

    from crmcore.cli import build_cli

    prepare(url, orgs, per_org)
    n = orgs * per_org
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "consent.csv"
        f.write_text("contact_ref,email,sms,at,source\n" + "".join(
            f"P{i:06d}-{j},opt_in,opt_out,2025-06-01,fair\n" for i in range(orgs) for j in range(per_org)), encoding="utf-8")
        t0 = time.perf_counter()
        r = CliRunner().invoke(build_cli((plugin,)), ["--database", url, "--user", "bench", "import", "consent", str(f)],
                               catch_exceptions=False)
        ours = time.perf_counter() - t0
        assert r.exit_code == 0 and f"{n} inserted" in r.output, r.output
    crm = _crm(url)
    try:
        t0 = time.perf_counter()
        for cid in range(1, sample + 1):
            with crm.unit_of_work("bench") as uow:
                people.set_contact_consent(uow, cid, ConsentSet(channel="phone", status="opt_in"))
        base = (time.perf_counter() - t0) / sample
    finally:
        crm.close()
    return {"rows": n, "ours_s": ours, "ours_per_row_ms": ours / n * 1000, "base_per_row_ms": base * 1000,
            "speedup": base / (ours / n)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orgs", type=int, default=2000)
    ap.add_argument("--per-org", type=int, default=3)
    ap.add_argument("--sample", type=int, default=300)
    ap.add_argument("--pg", help="PostgreSQL URL (its public schema is dropped and recreated)")
    ap.add_argument("--print-only", action="store_true")
    a = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(("SQLite", run(f"sqlite:///{tmp}/bench.db", a.orgs, a.per_org, a.sample)))
    if a.pg:
        results.append(("PostgreSQL", run(a.pg, a.orgs, a.per_org, a.sample)))
    lines = [f"{a.orgs:,} organisations x {a.per_org} contacts; each row sets two channels (email, sms).", "",
             "| engine | rows | import (s) | import per row (ms) | service call per person (ms) | speed-up |",
             "|---|---|---|---|---|---|"]
    for name, r in results:
        lines.append(f"| {name} | {r['rows']:,} | {r['ours_s']:.2f} | {r['ours_per_row_ms']:.3f} | "
                     f"{r['base_per_row_ms']:.2f} | **{r['speedup']:.0f}x** |")
    lines += ["", "Import = `crm import consent FILE` in-process (validation, batches, audit entry per person, error "
              "report); baseline = `people.set_contact_consent` in one unit of work per person (sample of "
              f"{a.sample}), no interpreter start-up. The issue's CLI call per customer was ~1.9 s with start-up."]
    body = "\n".join(lines)
    print(body)
    if not a.print_only:
        write_section("consent_bench", body)


if __name__ == "__main__":
    main()
