"""Duplicate scan benchmark: `crm customer duplicates` over N customers against the raw read of the
same columns, in one run, on SQLite and PostgreSQL.

    .venv/bin/python bench/duplicates_bench.py [--customers 1000000] [--dups 10000]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--pg-db crm_dupbench]

The customers are loaded raw (PostgreSQL: COPY; SQLite: one transaction, ``executemany`` in
batches, ``synchronous=OFF`` on the bench's own file only), timed but not the measure; 1% are
planted near-duplicates as stored (tests/test_duplicates.py's generator: typos, case, accents,
transposed words, legal forms, upper-case e-mails, formatted phones), so recall and precision
are measured on the same run. Baseline: the driver's plain ``SELECT id, name, email, phone,
country`` of every active customer (what any scan must read). Goal: the scan of 1M customers
under a minute. The database named by ``--pg-db`` is dropped and created again. Writes its
section of bench/RESULTS.md, with the load average (the machine is shared).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT / "tests"))
from _results import write_section  # noqa: E402
from test_duplicates import Row, planted_rows  # noqa: E402

from crmcore import CRM  # noqa: E402
from crmcore.models.customer import fold  # noqa: E402
from crmcore.services import duplicates  # noqa: E402

COLS = ("id, kind, name, search_name, email, phone, country, lifecycle_stage, tags, attributes, archived, version, "
        "external_ref, created_at, updated_at")
BATCH = 50_000


def load(crm: CRM, rows: list[Row]) -> None:
    """Raw insert of the customers: the same rows on both engines, stored as given."""
    now = dt.datetime.now(dt.UTC)
    full = [(i, "organization", name, fold(name), email, phone, country, "prospect", "[]", "{}", False, 1, f"B{i}", now, now)
            for i, name, email, phone, country in rows]
    raw = crm.engine.raw_connection()
    try:
        cur = raw.cursor()
        if crm.engine.dialect.name == "postgresql":
            with cur.copy(f"COPY customers ({COLS}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in full:
                    copy.write_row(row)
        else:  # the engine's connections autocommit each statement (it issues BEGIN itself): one transaction here
            cur.execute("PRAGMA synchronous=OFF")  # this bench's throw-away file only
            cur.execute("BEGIN")
            stamp = now.isoformat(" ")
            sql = f"INSERT INTO customers ({COLS}) VALUES ({', '.join('?' * len(full[0]))})"
            for k in range(0, len(full), BATCH):
                cur.executemany(sql, [(*row[:-2], stamp, stamp) for row in full[k:k + BATCH]])
            cur.execute("COMMIT")
        raw.commit()
    finally:
        raw.close()


def baseline(crm: CRM) -> float:
    raw = crm.engine.raw_connection()
    try:
        start = time.perf_counter()
        cur = raw.cursor()
        cur.execute("SELECT id, name, email, phone, country FROM customers WHERE NOT archived")
        n = len(cur.fetchall())
        took = time.perf_counter() - start
    finally:
        raw.close()
    assert n > 0
    return took


def run(url: str, rows: list[Row], truth: set[tuple[int, int]]) -> dict[str, float | str]:
    crm = CRM.open(url, create=True, entry_points=False, config={})
    crm.upgrade()
    start = time.perf_counter()
    load(crm, rows)
    if crm.engine.dialect.name == "postgresql":
        with crm.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE customers")
    loaded = time.perf_counter() - start
    base = baseline(crm)
    cpu, start = time.process_time(), time.perf_counter()
    with crm.unit_of_work("bench", read_only=True) as uow:
        report = duplicates.scan_report(uow)
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    pairs = {(c.a, c.b) for c in report.pairs}
    crm.close()
    result: dict[str, float | str] = {
        "load": loaded, "scan": took, "cpu": cpu, "read": base, "recall": len(pairs & truth) / len(truth),
        "precision": len(pairs & truth) / max(len(pairs), 1), "pairs": len(pairs), "skipped": len(report.skipped),
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]) if os.path.exists("/proc/loadavg") else "n/a"}
    print(url.split("://")[0], result, flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--dups", type=int, default=10_000)
    ap.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                    help="an administrative URL (the bench database is created through it)")
    ap.add_argument("--pg-db", default="crm_dupbench", help="the bench's own database: dropped and created again")
    ap.add_argument("--engines", default="sqlite,postgresql")
    a = ap.parse_args()
    start = time.perf_counter()
    rows, truth = planted_rows(a.customers - a.dups, a.dups, seed=42)
    print(f"generated {len(rows):,} rows in {time.perf_counter() - start:.1f} s", flush=True)
    results = {}
    if "sqlite" in a.engines:
        with tempfile.TemporaryDirectory() as tmp:
            results["SQLite"] = run(f"sqlite:///{tmp}/dup.db", rows, truth)
    if "postgresql" in a.engines:
        import psycopg

        admin = a.postgres.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{a.pg_db}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{a.pg_db}"')
        try:
            results["PostgreSQL"] = run(a.postgres.rsplit("/", 1)[0] + f"/{a.pg_db}", rows, truth)
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{a.pg_db}" WITH (FORCE)')
    lines = [f"{a.customers:,} customers, {a.dups:,} planted near-duplicates as stored (typos, case, accents, transposed "
             "words, legal forms; upper-case e-mails, formatted phones; each keeps its e-mail or its phone).", "",
             "| engine | load (not measured) | raw read | `customer duplicates` scan | scan CPU (process) | ratio | pairs "
             "| recall | precision | stop-word blocks | load average after |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for engine, r in results.items():
        lines.append(f"| {engine} | {r['load']:.1f} s | {r['read']:.2f} s | {r['scan']:.2f} s | {r['cpu']:.2f} s | "
                     f"{float(r['scan']) / float(r['read']):.1f}x | {int(r['pairs']):,} | {r['recall']:.3f} | "
                     f"{r['precision']:.3f} | {r['skipped']} | {r['loadavg']} |")
    lines += ["", "Goal: 1,000,000 customers scanned in under a minute on both engines. The machine has "
              f"{os.cpu_count()} cores and is shared; the scan CPU column is this process's own time (the "
              "database server's is not in it)."]
    write_section(f"duplicates_bench_{a.customers // 1000}k" if a.customers != 1_000_000 else "duplicates_bench",
                  "\n".join(lines))


if __name__ == "__main__":
    main()
