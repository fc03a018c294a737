"""Sales benchmark: forecast and funnel over a million opportunities, against a plain GROUP BY.

    .venv/bin/python bench/sales_bench.py [--opportunities 1000000] [--reps 50]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/crm_dev_sa] [--keep DIR]

Generates opportunities with NumPy (3 currencies, 50 reps, 24 months of expected close dates,
60 % open / 25 % won / 15 % lost, furthest stage reached, hand-set probabilities on 10 %)
straight into a fresh database (SQLite: driver ``executemany``; PostgreSQL: ``COPY``) migrated
by the core and the plugin's branch, then times, best of 3:

* ``forecast --by month``: :func:`analytics.forecast` (open deals, stage-default or hand-set
  probability, per month and currency) vs the plain ``GROUP BY month, currency`` of the open
  deals' amounts on a raw cursor;
* ``forecast --by owner``: open deals per owner, month and currency plus the won deals by the
  month they were won in (one GROUP BY over open and won deals, then the small quota table)
  vs the plain ``GROUP BY owner, status, month, currency`` of the open and won deals;
* ``report funnel``: :func:`analytics.funnel` vs the plain ``GROUP BY pipeline, reached stage,
  status`` count of the same table.

Target: each within 2x its plain GROUP BY. ``--postgres URL`` also runs on PostgreSQL (that
database's public schema is dropped first). Writes the "sales_bench" section of bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section

START = dt.date(2024, 1, 1)
CURRENCIES = np.array(["EUR", "USD", "GBP"])
CHUNK = 100_000


def fresh(url: str) -> Any:
    from crm_sales_automation import plugin
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
    return crm


def load(crm: Any, n: int, reps: int, seed: int = 5) -> float:
    """Users, customers, the default pipeline, quotas and ``n`` opportunities."""
    from crm_sales_automation import services
    from crm_sales_automation.models import Stage
    from sqlalchemy import select

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_customers = max(1000, n // 100)
    with crm.unit_of_work("bench") as uow:
        pipe = services.ensure_default_pipeline(uow)
        stages = list(uow.session.execute(select(Stage.id, Stage.position, Stage.kind).where(Stage.pipeline_id == pipe.id)
                                          .order_by(Stage.position)))
        pid = pipe.id
    open_ids = np.array([s[0] for s in stages if s[2].value == "open"])
    won_id = next(s[0] for s in stages if s[2].value == "won")
    lost_id = next(s[0] for s in stages if s[2].value == "lost")
    u = rng.random(n)
    status = np.where(u < 0.60, "open", np.where(u < 0.85, "won", "lost"))
    pos = rng.integers(1, len(open_ids) + 1, n)  # furthest open stage reached
    stage = np.where(status == "won", won_id, np.where(status == "lost", lost_id, open_ids[pos - 1]))
    reached = np.where(status == "won", len(open_ids) + 1, pos)
    amount = np.round(rng.lognormal(8.5, 1.0, n), 2)
    currency = CURRENCIES[rng.choice(3, n, p=[0.7, 0.2, 0.1])]
    owner = rng.integers(1, reps + 1, n)
    customer = rng.integers(1, n_customers + 1, n)
    created_day = rng.integers(0, 700, n)
    close_day = created_day + rng.integers(10, 120, n)
    prob = np.where(rng.random(n) < 0.1, rng.integers(0, 101, n), -1)
    days = np.datetime64(START.isoformat()) + np.arange(900)
    day_str = np.datetime_as_string(days, unit="D")
    created = np.char.add(day_str[created_day], " 09:00:00")
    closed = np.where(status == "open", None, np.char.add(day_str[close_day], " 17:00:00").astype(object))
    expected = day_str[close_day]

    from crm_sales_automation.models import Quota
    from sqlalchemy import insert

    from crmcore.models import Customer, User

    with crm.engine.begin() as conn:  # the core's tables through SQLAlchemy, so their column defaults apply
        conn.execute(insert(User), [{"username": f"rep{i}", "display_name": f"Rep {i}", "roles": ["sales"]}
                                    for i in range(1, reps + 1)])
        conn.execute(insert(Customer), [{"name": f"Customer {i}", "kind": "organization", "external_ref": f"C{i:07d}"}
                                        for i in range(1, n_customers + 1)])
        conn.execute(insert(Quota), [{"owner_id": r, "period": dt.date(2024 + m // 12, m % 12 + 1, 1), "currency": "EUR",
                                      "amount": 500000} for r in range(1, reps + 1) for m in range(30)])

    def opp_rows(lo: int, hi: int) -> list[tuple[Any, ...]]:
        return [(int(customer[i]), f"deal {i}", float(amount[i]), str(currency[i]), pid, int(stage[i]),
                 None if prob[i] < 0 else int(prob[i]), str(expected[i]), int(owner[i]), str(status[i]),
                 None if closed[i] is None else str(closed[i]), str(created[i]), str(created[i]), int(reached[i]), 1)
                for i in range(lo, hi)]

    cols = {"sales_opportunities": "customer_id, title, amount, currency, pipeline_id, stage_id, probability, expected_close, "
                                   "owner_id, status, closed_at, created_at, updated_at, reached_position, version"}
    raw = crm.engine.raw_connection()
    try:
        cur = raw.cursor()
        if crm.engine.dialect.name == "postgresql":
            def put(table: str, rows: list[tuple[Any, ...]]) -> None:
                with cur.copy(f"COPY {table} ({cols[table]}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        else:
            def put(table: str, rows: list[tuple[Any, ...]]) -> None:
                marks = ", ".join("?" * len(cols[table].split(",")))
                cur.executemany(f"INSERT INTO {table} ({cols[table]}) VALUES ({marks})", rows)
            cur.execute("BEGIN")
        for lo in range(0, n, CHUNK):
            put("sales_opportunities", opp_rows(lo, min(n, lo + CHUNK)))
        raw.commit()
        cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - start


def best(fn: Callable[[], Any], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def measure(crm: Any) -> dict[str, dict[str, float]]:
    from crm_sales_automation import analytics

    pg = crm.engine.dialect.name == "postgresql"
    month = "to_char(expected_close, 'YYYY-MM')" if pg else "strftime('%Y-%m', expected_close)"
    plain = {
        "forecast by month": f"SELECT {month}, currency, count(*), sum(amount) FROM sales_opportunities "
                             "WHERE status = 'open' GROUP BY 1, 2",
        "forecast by owner": f"SELECT owner_id, status, {month}, currency, count(*), sum(amount) FROM sales_opportunities "
                             "WHERE status IN ('open', 'won') GROUP BY 1, 2, 3, 4",
        "funnel": "SELECT pipeline_id, reached_position, status, count(*) FROM sales_opportunities GROUP BY 1, 2, 3",
    }
    ours: dict[str, Callable[[Any], Any]] = {
        "forecast by month": lambda uow: analytics.forecast(uow, "month"),
        "forecast by owner": lambda uow: analytics.forecast(uow, "owner"),
        "funnel": lambda uow: analytics.funnel(uow),
    }
    out = {}
    for name, sql in plain.items():
        def raw_query(sql: str = sql) -> None:
            conn = crm.engine.raw_connection()
            try:
                cur = conn.cursor()
                cur.execute(sql)
                cur.fetchall()
            finally:
                conn.close()

        def ours_query(fn: Callable[[Any], Any] = ours[name]) -> None:
            with crm.unit_of_work("bench", read_only=True) as uow:
                fn(uow)
        raw_query()  # warm the cache
        t_plain, t_ours = best(raw_query), best(ours_query)
        out[name] = {"ours": t_ours, "plain": t_plain, "ratio": t_ours / t_plain}
    return out


def run(url: str, n: int, reps: int) -> dict[str, Any]:
    crm = fresh(url)
    try:
        secs = load(crm, n, reps)
        print(f"{crm.engine.dialect.name}: loaded {n:,} opportunities in {secs:.1f}s", flush=True)
        res = measure(crm)
        for k, v in res.items():
            print(f"  {k}: {v['ours']:.3f}s vs plain GROUP BY {v['plain']:.3f}s = {v['ratio']:.2f}x", flush=True)
        return {"engine": crm.engine.dialect.name, "load": secs, "steps": res}
    finally:
        crm.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--opportunities", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--postgres", metavar="URL")
    ap.add_argument("--keep", metavar="DIR", help="keep the SQLite database in DIR")
    args = ap.parse_args()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sales-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    results = [run(f"sqlite:///{tmp / 'sales.db'}", args.opportunities, args.reps)]
    if args.postgres:
        results.append(run(args.postgres, args.opportunities, args.reps))
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    intro = (f"`bench/sales_bench.py --opportunities {args.opportunities}`: {args.opportunities:,} opportunities "
             f"({args.reps} reps, 3 currencies, 60 % open), best of 3, against a plain `GROUP BY` of the same table "
             "on a raw cursor. Target: ratio <= 2.")
    lines = [intro, "",
             "| engine | step | ours (s) | plain GROUP BY (s) | ratio |", "|---|---|---|---|---|"]
    for r in results:
        for step, v in r["steps"].items():
            lines.append(f"| {r['engine']} | {step} | {v['ours']:.3f} | {v['plain']:.3f} | {v['ratio']:.2f}x |")
    lines += ["", "Load times (not part of the target): " + ", ".join(f"{r['engine']} {r['load']:.0f}s" for r in results) + "."]
    write_section("sales_bench", "\n".join(lines))


if __name__ == "__main__":
    main()
