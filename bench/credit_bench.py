"""Credit benchmark: `crm credit score --all` for a million customers against a plain SQL GROUP BY.

    .venv/bin/python bench/credit_bench.py [--customers 1000000]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/crm_cr_bench] [--keep DIR]

Generates with NumPy a base where every customer has a few invoices over two years, most of them
paid (late by a lognormal number of days, some payments naming their invoice), a few written off,
and complaints for some customers; loads it straight into a fresh SQLite database (driver
``executemany``; PostgreSQL: ``COPY``), then times on each engine, in the same run:

* the raw baseline: a plain SQL ``GROUP BY customer`` of the same inputs (invoiced total and
  count, first invoice, payments, write-offs; complaints per customer), fetched whole;
* the rule scorecard computed for every customer, streamed by ranges of customers as
  ``crm credit score --all`` does (:func:`crm_credit.scoring.score` per id range: the range's
  ledger, open-item matching and the factors in NumPy, complaints grouped in SQL);
* ``crm credit score --all`` itself (:func:`crm_credit.scoring.score_all`: the same, and each
  range's ``credit_scores`` rows stored, committed);
* the receivables ageing of the whole ledger (open items + buckets).

Each engine is measured in a fresh child process, so its peak RSS is the scoring's, not the data
generation's. Writes the "credit_bench" section of bench/RESULTS.md. ``--postgres URL``: that
database is emptied first.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section

DAYS = 730
CHUNK = 200_000


def generate(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    per = rng.poisson(1.2, n) + 1  # invoices per customer (>= 1)
    cust = np.repeat(np.arange(n), per)
    m = cust.size
    issued = rng.integers(0, DAYS, m)  # days before today
    amount = np.maximum(np.round(rng.lognormal(6.5, 1.0, m), 2), 1.0)
    lateness = rng.lognormal(3.3, 0.6, m) * rng.choice([0.6, 1.0, 2.0], n)[cust]  # days to pay, per-customer habit
    paid = (issued - lateness > 0) & (rng.random(m) < 0.97)
    pay_day = np.where(paid, issued - lateness, 0).astype(np.int64)
    named = paid & (rng.random(m) < 0.1)
    written_off = ~paid & (issued > 200) & (rng.random(m) < 0.3)
    complaints = rng.integers(0, n, n // 20)
    return {"cust": cust, "issued": issued, "amount": amount, "paid": paid, "pay_day": pay_day, "named": named,
            "written_off": written_off, "complaints": complaints, "complaint_days": rng.integers(0, 400, complaints.size),
            "n": np.array(n)}


def _stamps(days_ago: np.ndarray, today: dt.date) -> list[str]:
    base = np.datetime64(today.isoformat(), "D")
    s = np.datetime_as_string((base - days_ago.astype("timedelta64[D]")).astype("datetime64[s]") + np.timedelta64(12, "h"))
    return np.char.replace(s, "T", " ").tolist()


def _dates(days_ago: np.ndarray, today: dt.date) -> list[str]:
    base = np.datetime64(today.isoformat(), "D")
    return np.datetime_as_string(base - days_ago.astype("timedelta64[D]")).tolist()


def fresh_database(url: str) -> None:
    from crm_credit import plugin
    from sqlalchemy import create_engine, text

    from crmcore import CRM

    if url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    crm = CRM.open(url, plugins=[plugin], entry_points=False, create=True, config={})
    crm.upgrade()
    crm.close()


def load(url: str, d: dict[str, np.ndarray], today: dt.date) -> tuple[int, float]:
    """Customers, one EUR account each, invoices, payments, write-offs, complaints. Returns (entries, seconds)."""
    from sqlalchemy import create_engine, inspect

    start = time.perf_counter()
    n = int(d["n"])
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    engine = create_engine(url)
    has_customer_id = "customer_id" in {c["name"] for c in inspect(engine).get_columns("transactions")}
    raw = engine.raw_connection()
    total = 0
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
        put("customers", "kind, name, lifecycle_stage, tags, external_ref, attributes, archived, created_at, updated_at, version",
            [("organization", f"Customer {i}", "active", "[]", f"C{i:07d}", "{}", False, now, now, 1) for i in range(n)])
        put("accounts", "customer_id, currency, payment_terms_days, status, balance, is_default, created_at",
            [(i + 1, "EUR", 30, "open", 0, True, now) for i in range(n)])
        cols = "account_id, kind, amount, currency, occurred_at, due_date, reference, description, source, created_at"
        if has_customer_id:
            cols += ", customer_id"
        m = d["cust"].size
        for lo in range(0, m, CHUNK):
            sl = slice(lo, min(lo + CHUNK, m))
            acc = (d["cust"][sl] + 1).tolist()
            k = sl.stop - sl.start
            refs = [f"INV{i}" for i in range(sl.start, sl.stop)]
            amt = d["amount"][sl].tolist()
            rows = list(zip(acc, ["invoice"] * k, amt, ["EUR"] * k, _stamps(d["issued"][sl], today),
                            _dates(d["issued"][sl] - 30, today), refs, [None] * k, ["bench"] * k, [now] * k))
            paid = np.flatnonzero(d["paid"][sl])
            pdays = _stamps(d["pay_day"][sl][paid], today)
            named = d["named"][sl][paid]
            rows += [(acc[j], "payment", amt[j], "EUR", pdays[q], None, f"PAY{sl.start + j}",
                      f"invoice:{refs[j]}" if named[q] else None, "bench", now) for q, j in enumerate(paid.tolist())]
            wo = np.flatnonzero(d["written_off"][sl])
            rows += [(acc[j], "write_off", amt[j], "EUR", _stamps(np.array([max(0, d["issued"][sl][j] - 180)]), today)[0],
                      None, f"WO{sl.start + j}", f"invoice:{refs[j]}", "bench", now) for j in wo.tolist()]
            if has_customer_id:
                rows = [(*r, r[0]) for r in rows]
            put("transactions", cols, rows)
            total += len(rows)
        put("interactions", "customer_id, channel, direction, kind, subject, occurred_at, source, created_at",
            list(zip((d["complaints"] + 1).tolist(), ["phone"] * d["complaints"].size, ["inbound"] * d["complaints"].size,
                     ["complaint"] * d["complaints"].size, ["late delivery"] * d["complaints"].size,
                     _stamps(d["complaint_days"], today), ["bench"] * d["complaints"].size, [now] * d["complaints"].size)))
        raw.commit()
        if url.startswith("postgresql"):
            raw.dbapi_connection.autocommit = True
            raw.cursor().execute("VACUUM ANALYZE")
        else:
            raw.cursor().execute("ANALYZE")
    finally:
        raw.close()
        engine.dispose()
    return total, time.perf_counter() - start


BASELINE_SQL = """
SELECT a.customer_id,
       SUM(CASE WHEN t.kind = 'invoice' THEN t.amount ELSE 0 END), SUM(CASE WHEN t.kind = 'invoice' THEN 1 ELSE 0 END),
       MIN(CASE WHEN t.kind = 'invoice' THEN t.occurred_at END), SUM(CASE WHEN t.kind = 'payment' THEN t.amount ELSE 0 END),
       SUM(CASE WHEN t.kind = 'write_off' THEN t.amount ELSE 0 END), MAX(t.due_date)
FROM transactions t JOIN accounts a ON a.id = t.account_id GROUP BY a.customer_id
"""
COMPLAINTS_SQL = "SELECT customer_id, COUNT(*) FROM interactions WHERE kind = 'complaint' GROUP BY customer_id"


def measure(url: str) -> dict[str, float]:
    from crm_credit import ledger, plugin, scoring
    from crm_credit.settings import CreditSettings
    from sqlalchemy import text

    from crmcore import CRM

    out: dict[str, float] = {}
    crm = CRM.open(url, plugins=[plugin], entry_points=False, config={})
    try:
        with crm.engine.connect() as conn:  # raw baseline: plain GROUP BY, fetched whole
            t = time.perf_counter()
            rows = conn.execute(text(BASELINE_SQL)).all()
            comp = conn.execute(text(COMPLAINTS_SQL)).all()
            out["baseline_s"] = time.perf_counter() - t
            out["baseline_rows"] = len(rows) + len(comp)
            del rows, comp
        s = CreditSettings()
        with crm.unit_of_work("bench", read_only=True) as uow:  # compute only, by ranges
            t = time.perf_counter()
            computed = 0
            for rng in scoring.customer_ranges(uow.session):
                computed += len(scoring.score(uow.session, s, dt.date.today(), id_range=rng).ids)
            out["score_s"] = time.perf_counter() - t
        t = time.perf_counter()
        with crm.unit_of_work("bench") as uow:  # crm credit score --all: compute and store, committed
            out["scored"], grades = scoring.score_all(uow.session, s, dt.date.today())
        out["score_all_s"] = time.perf_counter() - t
        assert out["scored"] == computed
        out["grades"] = grades  # type: ignore[assignment]
        out["peak_score_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the ageing
        with crm.unit_of_work("bench", read_only=True) as uow:
            t = time.perf_counter()
            _, totals = ledger.ageing(ledger.open_items(uow.session, dt.date.today()), dt.date.today())
            out["ageing_s"] = time.perf_counter() - t
            out["open_total"] = float(totals[0].open) if totals else 0.0
            assert all(sum(r.buckets.values()) == r.open for r in totals)
    finally:
        crm.close()
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _measure_child(url: str, q: Any) -> None:
    q.put(measure(url))


def measure_fresh(url: str) -> dict[str, float]:
    """:func:`measure` in a spawned child: its peak RSS is the scoring's alone."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_measure_child, args=(url, q))
    p.start()
    out = q.get()
    p.join()
    return out  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--postgres", help="also run on this PostgreSQL database (emptied first)")
    ap.add_argument("--keep", help="keep the SQLite database in this directory")
    ap.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    args = ap.parse_args()
    today = dt.date.today()
    data = generate(args.customers, 42)
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="credit-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    urls = [("SQLite", f"sqlite:///{tmp / 'credit.db'}")] + ([("PostgreSQL", args.postgres)] if args.postgres else [])
    lines = []
    try:
        for name, url in urls:
            fresh_database(url)
            entries, load_s = load(url, data, today)
            print(f"{name}: loaded {args.customers:,} customers, {entries:,} entries in {load_s:.1f} s", flush=True)
            load_before = os.getloadavg()[0]
            r = measure_fresh(url)
            r["load"] = (load_before, os.getloadavg()[0])  # a shared machine: the ratios move with it
            print(name, {k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()}, flush=True)
            lines.append((name, entries, r))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.no_write:
        return
    body = [(f"{args.customers:,} customers, every one scored by the rule scorecard (8 factors, open-item matching "
             "of the whole ledger). Baseline: a plain SQL `GROUP BY customer` of the same inputs (invoices, payments, "
             "write-offs, complaints), fetched whole, in the same run."), "",
            "| engine | entries | raw GROUP BY | score, by ranges (compute) | ratio | `score --all` (compute + store) "
            "| ratio | peak RSS (scoring) | ageing (whole ledger) | peak RSS (with ageing) | load avg (1 min, start → end) |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, entries, r in lines:
        body.append(f"| {name} | {entries:,} | {r['baseline_s']:.1f} s | {r['score_s']:.1f} s | "
                    f"{r['score_s'] / r['baseline_s']:.1f}x | {r['score_all_s']:.1f} s | {r['score_all_s'] / r['baseline_s']:.1f}x | "
                    f"{r['peak_score_mb']:,.0f} MB | {r['ageing_s']:.1f} s | {r['peak_rss_mb']:,.0f} MB | "
                    f"{r['load'][0]:.1f} → {r['load'][1]:.1f} ({os.cpu_count()} CPUs) |")
    body += ["", "Grades (SQLite run): " + ", ".join(f"{g} {c:,}" for g, c in lines[0][2]["grades"].items()), "",
             ("The score reads more than the GROUP BY: every entry's day, due date and (for settlements) the invoice it "
              "names, to rebuild the open items and the days to pay; the ratio is that price. `--all` streams the "
              "customers by id ranges of 100,000, so memory is bounded by a range. Peak RSS is the maximum of a "
              "fresh process that only measures: after the baseline and the scoring, then after the ageing, which "
              "still loads the whole ledger at once (not part of this target).")]
    write_section("credit_bench", "\n".join(body))


if __name__ == "__main__":
    main()
