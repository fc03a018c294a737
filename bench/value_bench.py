"""Value-analysis benchmark: `crm value run` and its parts against plain SQL and pandas, in one run.

    .venv/bin/python bench/value_bench.py [--customers 100000] [--transactions 2000000] [--big]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/crm_va_bench] [--keep DIR]

Generates a skewed customer base with NumPy (lognormal activity and spend: a few customers
make most of the revenue; births, churn, credit notes, payments, product lines, satisfaction
scores) straight into a fresh SQLite database (driver ``executemany``; PostgreSQL: ``COPY``), then
times, each step in its own process so its peak memory (``ru_maxrss``) is its own:

* ``value run``: :func:`services.run_analysis` -- everything for every customer, snapshot stored;
* the RFM + pyramid + Pareto (+ dependency) part alone: :func:`services.analyse_value`;
* a plain SQL ``GROUP BY`` of recency/frequency/monetary over the same rows (raw cursor);
* pandas: ``read_sql`` of the same rows + ``groupby`` (read and groupby timed separately);
* the BG/NBD + Gamma-Gamma maximum-likelihood fits (and ``crm value fit`` end to end).

Target: the whole `value run` within 1.5x the plain GROUP BY; fits < 5 s; memory bounded
(independent of the number of transactions). ``--big`` uses 10 million transactions.
``--postgres URL`` also runs every step on PostgreSQL; that database is emptied first.
Writes the "value_bench" section of bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402

START = dt.date(2022, 1, 1)
DAYS = 3 * 365
AS_OF = START + dt.timedelta(days=DAYS - 1)
CHUNK = 200_000
CATEGORIES = ["kitchens", "bathrooms", "flooring", "lighting", "garden", "tools", "paint", "storage"]


# =============================================================================================
# data
# =============================================================================================

def generate(n_customers: int, n_transactions: int, seed: int) -> dict[str, np.ndarray]:
    """Column arrays of a skewed base (transactions sorted by time, as they would be inserted)."""
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(0.0, 1.3, n_customers)
    per_customer = rng.multinomial(n_transactions, activity / activity.sum())
    spend_level = rng.lognormal(4.0, 0.8, n_customers) * (1.0 + np.log1p(activity))
    birth = rng.integers(0, DAYS - 30, n_customers)
    life = rng.exponential(700.0, n_customers)
    end = np.minimum(birth + life, DAYS - 1)
    cust = np.repeat(np.arange(n_customers), per_customer)
    seconds = (birth[cust] + rng.random(cust.size) * (end[cust] - birth[cust] + 1)) * 86400.0
    order = np.argsort(seconds, kind="stable")
    cust, seconds = cust[order], seconds[order]
    u = rng.random(cust.size)
    kind = np.where(u < 0.94, 0, np.where(u < 0.98, 1, 2))  # invoice, credit note, payment
    amount = np.round(spend_level[cust] * rng.lognormal(0.0, 0.5, cust.size) * np.where(kind == 1, 0.3, 1.0), 2)
    amount = np.maximum(amount, 0.01)
    preferred = rng.integers(0, len(CATEGORIES), n_customers)
    category = (preferred[cust] + rng.geometric(0.6, cust.size) - 1) % len(CATEGORIES)
    n_int = n_customers // 2
    return {"cust": cust, "seconds": seconds, "kind": kind, "amount": amount, "category": category,
            "int_cust": rng.integers(0, n_customers, n_int), "int_seconds": rng.random(n_int) * DAYS * 86400.0,
            "int_sat": rng.integers(1, 6, n_int), "n_customers": np.array(n_customers)}


def _stamps(seconds: np.ndarray) -> list[str]:
    base = np.datetime64(START.isoformat(), "us")
    s = np.datetime_as_string(base + (seconds * 1e6).astype("timedelta64[us]"), unit="us")
    return np.char.replace(s, "T", " ").tolist()


def fresh_database(url: str) -> None:
    """Empty the database and create the core's and the plugin's tables through their migrations."""
    import crm_value_analysis.plugin as plugin
    from crmcore import CRM
    from sqlalchemy import create_engine, text

    if url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    crm = CRM.open(url, plugins=[plugin], entry_points=False, create=True, config={})
    crm.upgrade()
    crm.close()


def load(url: str, data: dict[str, np.ndarray]) -> float:
    """Insert customers, one account each, the transactions and some rated interactions."""
    from sqlalchemy import create_engine

    start = time.perf_counter()
    n = int(data["n_customers"])
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    kinds = np.array(["invoice", "credit_note", "payment"])
    customers = [("organization", f"Customer {i}", "prospect", "[]", f"C{i:07d}", "{}", False, now, now, 1)
                 for i in range(n)]
    accounts = [(i + 1, "EUR", 30, "open", 0, True, now) for i in range(n)]

    def tx_rows(lo: int, hi: int) -> list[tuple[Any, ...]]:
        sl = slice(lo, hi)
        acc = (data["cust"][sl] + 1).tolist()
        return list(zip(acc, acc, kinds[data["kind"][sl]].tolist(), data["amount"][sl].tolist(), ["EUR"] * (hi - lo),
                        _stamps(data["seconds"][sl]), [f"T{i}" for i in range(lo, hi)],
                        np.array(CATEGORIES)[data["category"][sl]].tolist(), ["bench"] * (hi - lo), [now] * (hi - lo)))

    def int_rows() -> list[tuple[Any, ...]]:
        return list(zip((data["int_cust"] + 1).tolist(), ["phone"] * data["int_cust"].size, ["inbound"] * data["int_cust"].size,
                        ["feedback"] * data["int_cust"].size, ["survey"] * data["int_cust"].size,
                        _stamps(data["int_seconds"]), data["int_sat"].tolist(), ["bench"] * data["int_cust"].size,
                        [now] * data["int_cust"].size))

    cust_cols = "kind, name, lifecycle_stage, tags, external_ref, attributes, archived, created_at, updated_at, version"
    acc_cols = "customer_id, currency, payment_terms_days, status, balance, is_default, created_at"
    tx_cols = "account_id, customer_id, kind, amount, currency, occurred_at, reference, category, source, created_at"
    int_cols = "customer_id, channel, direction, kind, subject, occurred_at, satisfaction, source, created_at"
    m = data["cust"].size
    engine = create_engine(url)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if url.startswith("sqlite"):
            def put(table: str, cols: str, rows: list[tuple[Any, ...]]) -> None:
                marks = ", ".join("?" * (cols.count(",") + 1))
                cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)
        else:
            def put(table: str, cols: str, rows: list[tuple[Any, ...]]) -> None:
                with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        put("customers", cust_cols, customers)
        put("accounts", acc_cols, accounts)
        for lo in range(0, m, CHUNK):
            put("transactions", tx_cols, tx_rows(lo, min(lo + CHUNK, m)))
        put("interactions", int_cols, int_rows())
        raw.commit()
        if url.startswith("postgresql"):
            # what autovacuum does soon after an import (statistics, hint bits, visibility map);
            # done here so it does not run in the middle of a timed step
            raw.driver_connection.autocommit = True
            raw.driver_connection.execute("VACUUM ANALYZE")
    finally:
        raw.close()
        engine.dispose()
    return time.perf_counter() - start


# =============================================================================================
# steps (each runs in its own process: `--step NAME --url URL`)
# =============================================================================================

def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _best(fn: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _crm(url: str) -> Any:
    import crm_value_analysis.plugin as plugin
    from crmcore import CRM

    return CRM.open(url, plugins=[plugin], entry_points=False, config={})


def step_run(url: str) -> dict[str, Any]:
    from crm_value_analysis import services

    crm = _crm(url)
    start = time.perf_counter()
    with crm.unit_of_work("bench") as uow:
        out = services.run_analysis(uow, as_of=AS_OF)
    seconds = time.perf_counter() - start
    crm.close()
    return {"seconds": seconds, "timings": out.summary["timings"], "warnings": out.summary["warnings"],
            "purchasers": out.run.n_purchasers, "gini": out.summary["pareto"]["gini"],
            "top20": out.summary["pareto"]["top_shares"]["20%"], "lifecycle_updated": out.lifecycle_updated,
            "models": out.summary["models"]}


def step_rerun(url: str) -> dict[str, Any]:
    """The next day's run on the same base: what a nightly job costs once stages have settled."""
    from crm_value_analysis import services

    crm = _crm(url)
    start = time.perf_counter()
    with crm.unit_of_work("bench") as uow:
        out = services.run_analysis(uow, as_of=AS_OF + dt.timedelta(days=1))
    seconds = time.perf_counter() - start
    crm.close()
    return {"seconds": seconds, "timings": out.summary["timings"], "lifecycle_updated": out.lifecycle_updated}


def step_value_part(url: str) -> dict[str, Any]:
    from crm_value_analysis import loaders, services
    from crm_value_analysis.schemas import ValueSettings

    crm = _crm(url)
    settings = ValueSettings()
    with crm.unit_of_work("bench") as uow:
        def part() -> None:
            ids = loaders.customer_ids(uow.session)
            services.analyse_value(uow.session, ids, settings, AS_OF)
        seconds = _best(part, 3)
    crm.close()
    return {"seconds": seconds}


PLAIN_GROUP_BY = (
    "SELECT a.customer_id, MAX(t.occurred_at), COUNT(*), SUM(t.amount) "
    "FROM transactions t JOIN accounts a ON a.id = t.account_id "
    "WHERE t.kind IN ('invoice', 'credit_note') AND t.occurred_at < {end} GROUP BY a.customer_id"
)


#: the same GROUP BY on ``transactions.customer_id`` (kept equal to the account's customer), no join
STRICT_GROUP_BY = (
    "SELECT t.customer_id, MAX(t.occurred_at), COUNT(*), SUM(t.amount) FROM transactions t "
    "WHERE t.kind IN ('invoice', 'credit_note') AND t.occurred_at < {end} GROUP BY t.customer_id"
)


def step_group_by_strict(url: str) -> dict[str, Any]:
    return step_group_by(url, STRICT_GROUP_BY)


def step_group_by(url: str, template: str = PLAIN_GROUP_BY) -> dict[str, Any]:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    raw = engine.raw_connection()
    end = (AS_OF + dt.timedelta(days=1)).isoformat()
    sql = template.format(end=f"'{end}'" if url.startswith("sqlite") else f"TIMESTAMPTZ '{end} 00:00+00'")
    rows: list[Any] = []

    def query() -> None:
        nonlocal rows
        cur = raw.cursor()
        cur.execute(sql)
        rows = cur.fetchall()
        cur.close()
    seconds = _best(query, 3)
    raw.close()
    engine.dispose()
    return {"seconds": seconds, "rows": len(rows)}


def step_pandas(url: str) -> dict[str, Any]:
    import pandas as pd
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    end = (AS_OF + dt.timedelta(days=1)).isoformat()
    start = time.perf_counter()
    df = pd.read_sql(text(
        "SELECT a.customer_id, t.occurred_at, t.kind, t.amount FROM transactions t JOIN accounts a ON a.id = t.account_id "
        "WHERE t.kind IN ('invoice', 'credit_note') AND t.occurred_at < :end"), engine, params={"end": end})
    read = time.perf_counter() - start
    start = time.perf_counter()
    df["occurred_at"] = pd.to_datetime(df["occurred_at"], utc=True, format="ISO8601")
    df["amount"] = df["amount"].astype(float)
    purchase = df["kind"] == "invoice"
    df["net"] = df["amount"].where(purchase, -df["amount"])
    df["last"] = df["occurred_at"].where(purchase)
    df["purchase"] = purchase
    g = df.groupby("customer_id").agg(last=("last", "max"), frequency=("purchase", "sum"), monetary=("net", "sum"))
    group = time.perf_counter() - start
    engine.dispose()
    return {"seconds": read + group, "read": read, "groupby": group, "rows": int(len(df)), "groups": int(len(g))}


def step_imports(url: str) -> dict[str, Any]:
    """The floor of every step: the interpreter with NumPy, SciPy, SQLAlchemy and the plugin imported."""
    import crm_value_analysis.plugin  # noqa: F401
    import crm_value_analysis.services  # noqa: F401
    import scipy.optimize  # noqa: F401

    return {"seconds": 0.0}


def step_fit(url: str) -> dict[str, Any]:
    from crm_value_analysis import services

    crm = _crm(url)
    start = time.perf_counter()
    with crm.unit_of_work("bench") as uow:
        out = services.fit_models(uow, AS_OF - dt.timedelta(days=180))
    total = time.perf_counter() - start
    crm.close()
    return {"seconds": out["seconds"], "total": total, "customers": out["customers"],
            "converged": bool(out["purchase"]["converged"] and out["gamma_gamma"]["converged"])}


def step_load(url: str, n_customers: int = 0, n_transactions: int = 0, seed: int = 0) -> dict[str, Any]:
    """Generate the base and load it into a fresh database (in a child, so no step inherits its memory)."""
    start = time.perf_counter()
    data = generate(n_customers, n_transactions, seed)
    generated = time.perf_counter() - start
    fresh_database(url)
    return {"seconds": load(url, data), "generated": generated, "transactions": int(data["cust"].size)}


STEPS = {"imports": step_imports, "load": step_load, "run": step_run, "rerun": step_rerun, "value_part": step_value_part,
         "group_by": step_group_by, "group_by_strict": step_group_by_strict, "pandas": step_pandas, "fit": step_fit}


def run_step(name: str, url: str, *extra: str) -> dict[str, Any]:
    """Run one step in a fresh interpreter: its ru_maxrss is then the step's own peak (Linux keeps the
    high-water mark across fork + exec, so the parent stays small and never holds the data)."""
    proc = subprocess.run([sys.executable, __file__, "--step", name, "--url", url, *extra], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"step {name} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# =============================================================================================
# report
# =============================================================================================

def bench_engine(label: str, url: str, n_customers: int, n_transactions: int, seed: int) -> dict[str, Any]:
    loaded = run_step("load", url, "--customers", str(n_customers), "--transactions", str(n_transactions),
                      "--seed", str(seed))
    print(f"[{label}] generated in {loaded['generated']:.1f} s, loaded {loaded['transactions']:,} transactions "
          f"in {loaded['seconds']:.1f} s", flush=True)
    res: dict[str, Any] = {"label": label, "load": loaded}
    for name in ("imports", "group_by", "group_by_strict", "value_part", "fit", "pandas"):
        res[name] = run_step(name, url)
        print(f"[{label}] {name}: {res[name]['seconds']:.2f} s, peak {res[name]['peak_mb']:.0f} MB", flush=True)
    # a run changes the base (snapshot, lifecycle stages): each of the RUNS first runs gets a fresh
    # copy of the loaded base, then the next day's run on that copy; the best of each is reported,
    # as for the GROUP BY
    runs: dict[str, list[dict[str, Any]]] = {"run": [], "rerun": []}
    for j in range(RUNS):
        copy_url, drop = fresh_copy(url, j)
        try:
            for name in ("run", "rerun"):
                runs[name].append(run_step(name, copy_url))
                print(f"[{label}] {name} #{j + 1}: {runs[name][-1]['seconds']:.2f} s, "
                      f"peak {runs[name][-1]['peak_mb']:.0f} MB", flush=True)
        finally:
            drop()
    for name, all_runs in runs.items():
        res[name] = min(all_runs, key=lambda r: r["seconds"])
        res[name]["all_seconds"] = [r["seconds"] for r in all_runs]
    return res


#: first runs measured, each on a fresh copy of the loaded base
RUNS = 3


def fresh_copy(url: str, j: int) -> tuple[str, Any]:
    """A copy of the loaded base and a function that removes it: a file copy on SQLite, a template database on PostgreSQL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        target = Path(str(u.database) + f".run{j}")
        shutil.copyfile(str(u.database), target)
        return str(u.set(database=str(target))), lambda: target.unlink(missing_ok=True)
    name = f"{u.database}_run{j}"
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{u.database}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return u.set(database=name).render_as_string(hide_password=False), drop


STEP_NAMES = {
    "read": "read: ONE pass over the entries (SQLite: the GROUP BY split over one connection per core, with the "
            "first-day look-ups; PostgreSQL: binary COPY split over one connection per core, folded in NumPy), satisfaction",
    "value": "RFM scores, segments, pyramid, Pareto, dependency (NumPy)",
    "models": "purchase model + Gamma-Gamma fits, P(alive), expected purchases, CLV",
    "lifecycle_loyalty_clv": "lifecycle, loyalty, deterministic CLV",
    "previous": "previous snapshot (tier moves)",
    "store": "snapshot rows (COPY on PostgreSQL, one executemany on SQLite)",
    "lifecycle_update": "core lifecycle stages (one UPDATE ... FROM the snapshot)",
}


def markdown(results: list[dict[str, Any]], n_customers: int, n_transactions: int) -> str:
    lines = [
        f"{n_customers:,} customers, {n_transactions:,} transactions (lognormal skew), analysis as of {AS_OF}.",
        "",
        "| engine | step | seconds | ratio | peak RSS (MB) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        base = r["group_by"]["seconds"]
        rows = [
            ("interpreter + imports only (memory floor)", 0.0, None, r["imports"]["peak_mb"]),
            ("plain SQL GROUP BY (R, F, M; raw cursor; joins accounts, as when the issue was measured)",
             r["group_by"]["seconds"], 1.0, r["group_by"]["peak_mb"]),
            ("the same GROUP BY on transactions.customer_id, no join (strict baseline)", r["group_by_strict"]["seconds"],
             r["group_by_strict"]["seconds"] / base, r["group_by_strict"]["peak_mb"]),
            ("RFM + pyramid + Pareto + dependency alone", r["value_part"]["seconds"], r["value_part"]["seconds"] / base,
             r["value_part"]["peak_mb"]),
            (f"**`value run` end to end (everything, snapshot stored)**; best of {len(r['run']['all_seconds'])} "
             f"fresh copies: {' / '.join(f'{x:.2f}' for x in r['run']['all_seconds'])} s",
             r["run"]["seconds"], r["run"]["seconds"] / base, r["run"]["peak_mb"]),
            *((f"&nbsp;&nbsp;run step: {STEP_NAMES.get(k, k)}", v, None, None) for k, v in r["run"]["timings"].items()),
            (f"`value run` the next day ({r['rerun']['lifecycle_updated']:,} stages change); best of "
             f"{' / '.join(f'{x:.2f}' for x in r['rerun']['all_seconds'])} s",
             r["rerun"]["seconds"], r["rerun"]["seconds"] / base, r["rerun"]["peak_mb"]),
            *((f"&nbsp;&nbsp;next-day step: {STEP_NAMES.get(k, k)}", v, None, None) for k, v in r["rerun"]["timings"].items()),
            ("BG/NBD + Gamma-Gamma MLE fits", r["fit"]["seconds"], None, None),
            ("`value fit` end to end (load + fits)", r["fit"]["total"], r["fit"]["total"] / base, r["fit"]["peak_mb"]),
            (f"pandas read_sql ({r['pandas']['rows']:,} rows)", r["pandas"]["read"], None, None),
            ("pandas groupby", r["pandas"]["groupby"], None, None),
            ("pandas read + groupby", r["pandas"]["seconds"], r["pandas"]["seconds"] / base, r["pandas"]["peak_mb"]),
        ]
        for name, sec, ratio, mb in rows:
            lines.append(f"| {r['label']} | {name} | {sec:.2f} | {'' if ratio is None else f'**{ratio:.2f}x**'} | "
                         f"{'' if mb is None else f'{mb:,.0f}'} |")
    lines.append("")
    lines.append("**`value run` / plain GROUP BY: " + ", ".join(
        f"{r['label']} {r['run']['seconds'] / r['group_by']['seconds']:.2f}x (next day "
        f"{r['rerun']['seconds'] / r['group_by']['seconds']:.2f}x)" for r in results) + "** (target ≤ 1.5x).")
    lines.append("")
    lines.append("**Against the strict baseline (no join): " + ", ".join(
        f"{r['label']} {r['run']['seconds'] / r['group_by_strict']['seconds']:.2f}x (next day "
        f"{r['rerun']['seconds'] / r['group_by_strict']['seconds']:.2f}x)" for r in results) + "**.")
    lines.append("")
    for r in results:
        lines.append(f"{r['label']}: fitted on {r['fit']['customers']:,} customers, converged: {r['fit']['converged']}; "
                     f"{r['run']['lifecycle_updated']:,} lifecycle stages changed; top 20% of purchasers hold "
                     f"{100 * r['run']['top20']:.0f}% of revenue (Gini {r['run']['gini']:.2f}).")
    lines += ["", "Ratios are against the plain GROUP BY of the same engine, measured in the same run (best of 3 for "
              "the GROUP BY and the value part; best of 3 for `value run`, each on a fresh copy of the loaded base, "
              "where every lifecycle stage changes, then the next day's run on that copy). PostgreSQL is vacuumed and analysed after "
              "the load, as autovacuum would do, so no maintenance runs inside a timed step. Memory: per-customer "
              "arrays (and on PostgreSQL one bit per customer and day of history), so peak RSS grows with customers, "
              "not transactions."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--transactions", type=int, default=2_000_000)
    ap.add_argument("--big", action="store_true", help="10 million transactions")
    ap.add_argument("--postgres", metavar="URL", help="also benchmark this PostgreSQL database (it is emptied)")
    ap.add_argument("--keep", metavar="DIR", help="keep the SQLite database in DIR")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--print-only", action="store_true", help="print the table, leave bench/RESULTS.md alone")
    ap.add_argument("--step", choices=sorted(STEPS), help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        kw = {"n_customers": args.customers, "n_transactions": args.transactions, "seed": args.seed} if args.step == "load" else {}
        out = STEPS[args.step](args.url, **kw)
        out["peak_mb"] = _peak_mb()
        print(json.dumps(out, default=str))
        return
    n_tx = 10_000_000 if args.big else args.transactions
    directory = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="value_bench_"))
    directory.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        results.append(bench_engine("SQLite", f"sqlite:///{directory / 'value_bench.db'}", args.customers, n_tx, args.seed))
        if args.postgres:
            results.append(bench_engine("PostgreSQL", args.postgres, args.customers, n_tx, args.seed))
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    md = markdown(results, args.customers, n_tx)
    print(md)
    if not args.print_only:
        write_section("value_bench", md)


if __name__ == "__main__":
    main()
