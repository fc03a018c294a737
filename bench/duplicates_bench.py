"""Duplicate scan benchmark: `crm customer duplicates` over N customers against the raw read of the
same columns, in one run, on SQLite and PostgreSQL.

    .venv/bin/python bench/duplicates_bench.py [--customers 1000000] [--dups 10000]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

The customers are loaded with raw ``executemany``/COPY (the load is not measured); 1% are planted
near-duplicates (tests/test_duplicates.py's generator), so recall and precision are measured on
the same run. Baseline: the driver's plain ``SELECT id, name, email, phone, country`` of every
active customer (what any scan must read). Goal: the scan of 1M customers under a minute.
Writes its section of bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT / "tests"))
from _results import write_section  # noqa: E402
from test_duplicates import planted  # noqa: E402

from crmcore import CRM  # noqa: E402
from crmcore.services import duplicates  # noqa: E402


def load(crm: CRM, records: list[duplicates.Record]) -> None:
    """Raw insert of the customers (not measured): the same rows on both engines."""
    from crmcore.models.customer import fold

    now = dt.datetime.now(dt.UTC)
    rows = [(r.id, "organization", r.name, fold(r.name), r.email, r.phone, "DE", "prospect", "[]", "{}", False, 1,
             f"B{r.id}", now, now) for r in records]
    cols = ("id, kind, name, search_name, email, phone, country, lifecycle_stage, tags, attributes, archived, version, "
            "external_ref, created_at, updated_at")
    raw = crm.engine.raw_connection()
    try:
        cur = raw.cursor()
        if crm.engine.dialect.name == "postgresql":
            with cur.copy(f"COPY customers ({cols}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in rows:
                    copy.write_row(row)
        else:
            cur.executemany(f"INSERT INTO customers ({cols}) VALUES ({', '.join('?' * len(rows[0]))})",
                            [(*row[:-2], now.isoformat(" "), now.isoformat(" ")) for row in rows])
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


def run(url: str, n: int, dups: int) -> dict[str, float]:
    records, truth = planted(n - dups, dups, seed=42)
    crm = CRM.open(url, create=True, entry_points=False, config={})
    crm.upgrade()
    load(crm, records)
    if crm.engine.dialect.name == "postgresql":
        with crm.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE customers")
    base = baseline(crm)
    start = time.perf_counter()
    with crm.unit_of_work("bench", read_only=True) as uow:
        found = duplicates.scan(uow)
    took = time.perf_counter() - start
    pairs = {(c.a, c.b) for c in found}
    crm.close()
    return {"scan": took, "read": base, "recall": len(pairs & truth) / len(truth),
            "precision": len(pairs & truth) / max(len(pairs), 1), "pairs": len(pairs)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--dups", type=int, default=10_000)
    ap.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    a = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["SQLite"] = run(f"sqlite:///{tmp}/dup.db", a.customers, a.dups)
    import psycopg

    admin = a.postgres.replace("postgresql+psycopg://", "postgresql://")
    name = f"crm_dupbench_{int(time.time())}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        results["PostgreSQL"] = run(a.postgres.rsplit("/", 1)[0] + f"/{name}", a.customers, a.dups)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    lines = [f"{a.customers:,} customers, {a.dups:,} planted near-duplicates (typos, case, accents, transposed "
             "words, legal forms, reformatted phones; each keeps its e-mail or its phone).", "",
             "| engine | raw read | `customer duplicates` scan | ratio | pairs | recall | precision |",
             "|---|---|---|---|---|---|---|"]
    for engine, r in results.items():
        lines.append(f"| {engine} | {r['read']:.2f} s | {r['scan']:.2f} s | {r['scan'] / r['read']:.1f}x | "
                     f"{r['pairs']:,} | {r['recall']:.3f} | {r['precision']:.3f} |")
        print(engine, r)
    write_section("duplicates_bench", "\n".join(lines))


if __name__ == "__main__":
    main()
