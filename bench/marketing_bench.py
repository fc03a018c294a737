"""Segment rules compiled to SQL vs the same query written by hand, on SQLite and PostgreSQL.

The rule is three clauses, one of them behavioural::

    country = "DE" and tags has "trade" and spend(days=365) > 1000

Ours = parse + compile + COUNT through ``crm_marketing.services`` (what ``crm marketing segment
preview`` runs); raw = a hand-written SQL string of the same query, run by the driver. Both are
timed in the same run on the same data (best of 3) and must return the same count.

    python bench/marketing_bench.py [--customers 1000000] [--transactions 2000000] [--pg URL] [--print-only]

Writes the "marketing_bench" section of bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section

RULE = 'country = "DE" and tags has "trade" and spend(days=365) > 1000'
NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
CHUNK = 200_000

HAND = {
    "sqlite": """
SELECT count(*) FROM customers c
JOIN (SELECT a.customer_id, sum(t.amount) AS s FROM transactions t JOIN accounts a ON a.id = t.account_id
      WHERE t.kind = 'invoice' AND t.currency = 'EUR' AND t.occurred_at >= :since GROUP BY a.customer_id) x
  ON x.customer_id = c.id
WHERE c.archived = 0 AND c.country = 'DE' AND x.s > 1000
  AND EXISTS (SELECT 1 FROM json_each(c.tags) WHERE json_each.value = 'trade')""",
    "postgresql": """
SELECT count(*) FROM customers c
JOIN (SELECT a.customer_id, sum(t.amount) AS s FROM transactions t JOIN accounts a ON a.id = t.account_id
      WHERE t.kind = 'invoice' AND t.currency = 'EUR' AND t.occurred_at >= :since GROUP BY a.customer_id) x
  ON x.customer_id = c.id
WHERE NOT c.archived AND c.country = 'DE' AND x.s > 1000 AND c.tags::jsonb @> '["trade"]'""",
}


def _crm(url: str) -> Any:
    from crm_marketing import plugin

    from crmcore import CRM

    return CRM.open(url, plugins=[plugin], entry_points=False, create=True, config={})


def fresh(url: str) -> None:
    from sqlalchemy import create_engine, text

    if url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    crm = _crm(url)
    crm.upgrade()
    crm.close()


def load(url: str, n: int, m: int, seed: int) -> float:
    """Customers (30% DE, 20% tagged trade), one account each, m invoices over two years."""
    from sqlalchemy import create_engine, inspect

    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    now = NOW.strftime("%Y-%m-%d %H:%M:%S")
    countries = np.array(["DE", "FR", "AT", "IT", "PL"])[rng.choice(5, n, p=[0.3, 0.25, 0.2, 0.15, 0.1])]
    trade = rng.random(n) < 0.2
    customers = [("organization", f"Customer {i}", f"customer {i}", "prospect", '["trade"]' if trade[i] else "[]",
                  f"C{i:07d}", "{}", False, now, now, 1, str(countries[i])) for i in range(n)]
    engine = create_engine(url)
    tx_has_customer = "customer_id" in {c["name"] for c in inspect(engine).get_columns("transactions")}
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if url.startswith("sqlite"):
            def put(table: str, cols: str, rows: list[tuple[Any, ...]]) -> None:
                cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * (cols.count(',') + 1))})", rows)
        else:
            def put(table: str, cols: str, rows: list[tuple[Any, ...]]) -> None:
                with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        put("customers", "kind, name, search_name, lifecycle_stage, tags, external_ref, attributes, archived, created_at, "
            "updated_at, version, country", customers)
        put("accounts", "customer_id, currency, payment_terms_days, status, balance, is_default, created_at",
            [(i + 1, "EUR", 30, "open", 0, True, now) for i in range(n)])
        cust = rng.integers(0, n, m)
        amount = np.round(rng.lognormal(5.0, 1.0, m), 2)
        seconds = rng.integers(0, 730 * 86400, m)
        stamps = (np.datetime64(NOW.replace(tzinfo=None)) - seconds.astype("timedelta64[s]")).astype(str)
        cols = "account_id, kind, amount, currency, occurred_at, reference, source, created_at"
        if tx_has_customer:
            cols += ", customer_id"
        for lo in range(0, m, CHUNK):
            hi = min(lo + CHUNK, m)
            rows = [(int(c) + 1, "invoice", float(a), "EUR", s.replace("T", " "), f"T{i}", "bench", now)
                    + ((int(c) + 1,) if tx_has_customer else ())
                    for i, c, a, s in zip(range(lo, hi), cust[lo:hi], amount[lo:hi], stamps[lo:hi])]
            put("transactions", cols, rows)
        cur.execute("ANALYZE")  # fresh statistics, as a production database would have
        raw.commit()
    finally:
        raw.close()
        engine.dispose()
    return time.perf_counter() - start


def _best(fn: Any, repeat: int = 3) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def measure(url: str) -> dict[str, Any]:
    from crm_marketing import segments, services
    from sqlalchemy import text

    crm = _crm(url)
    dialect = crm.engine.dialect.name
    since = NOW - dt.timedelta(days=365)
    try:
        def ours() -> int:
            with crm.unit_of_work("bench", read_only=True) as uow:
                ctx = services.compile_context(uow)
                ctx.today = NOW
                q = segments.compile_rule(segments.parse(RULE), ctx, dialect)
                return services.preview(uow, q, sample=0)[0]

        def hand() -> int:
            with crm.engine.connect() as conn:
                bind = since.replace(tzinfo=None) if dialect == "sqlite" else since
                return int(conn.execute(text(HAND[dialect]), {"since": bind}).scalar_one())

        t_ours, n_ours = _best(ours)
        t_hand, n_hand = _best(hand)
    finally:
        crm.close()
    if n_ours != n_hand:
        raise SystemExit(f"counts differ on {dialect}: ours {n_ours}, hand-written {n_hand}")
    return {"engine": "SQLite" if dialect == "sqlite" else "PostgreSQL", "matches": n_ours, "ours": t_ours, "hand": t_hand}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--transactions", type=int, default=2_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pg", help="PostgreSQL URL of a database the benchmark may empty (skipped when not given)")
    ap.add_argument("--print-only", action="store_true")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        urls = [f"sqlite:///{tmp}/bench.db"] + ([a.pg] if a.pg else [])
        for url in urls:
            fresh(url)
            seconds = load(url, a.customers, a.transactions, a.seed)
            r = measure(url)
            r["load"] = seconds
            rows.append(r)
            print(f"{r['engine']}: {r['matches']:,} match; ours {r['ours']:.3f}s, hand-written {r['hand']:.3f}s, "
                  f"ratio {r['ours'] / r['hand']:.2f} (load {seconds:.0f}s)", flush=True)
    body = (f"{a.customers:,} customers, {a.transactions:,} invoices; rule `{RULE}`.\n\n"
            "| engine | customers matched | ours (s) | hand-written SQL (s) | ratio (ours/hand) |\n|---|---|---|---|---|\n"
            + "\n".join(f"| {r['engine']} | {r['matches']:,} | {r['ours']:.3f} | {r['hand']:.3f} | **{r['ours'] / r['hand']:.2f}** |"
                        for r in rows)
            + "\n\nOurs = parse + compile + COUNT through `crm_marketing.services` (what `crm marketing segment preview` runs); "
              "hand-written = the same query as one SQL string through the driver. Best of 3 each. Target: ratio <= 1.5.")
    if not a.print_only:
        write_section("marketing_bench", body)
    print(body)


if __name__ == "__main__":
    main()
