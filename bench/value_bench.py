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

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section
from _value_bench_data import AS_OF, fresh_copy, fresh_database, generate, load
from _value_bench_report import markdown

# =============================================================================================
# steps (each runs in its own process: `--step NAME --url URL`)
# =============================================================================================

def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _load_average() -> float:
    """The machine's 1-minute load average (0.0 where /proc is not there)."""
    try:
        return float(Path("/proc/loadavg").read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0


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
    return {"seconds": seconds, "timings": out.summary["timings"], "lifecycle_updated": out.lifecycle_updated,
            "rows_written": out.summary.get("rows_written")}


def step_rerun_same(url: str) -> dict[str, Any]:
    """The next day's run again, on the same data: no lifecycle stage changes (the snapshot of that date is replaced)."""
    return step_rerun(url)


SNAPSHOT = "value_analysis_customer_values"


def step_dump(url: str, path: str = "", base_url: str = "") -> dict[str, Any]:
    """After the first run: its snapshot rows and the stages it changed (against the loaded base), pickled
    for :func:`step_baseline_writes` (not timed)."""
    import pickle

    from sqlalchemy import create_engine

    def fetch(u: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        engine = create_engine(u)
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute(sql)
            names = [c[0] for c in cur.description]
            return names, [tuple(r) for r in cur.fetchall()]
        finally:
            raw.close()
            engine.dispose()

    run_id = fetch(url, f"SELECT id FROM value_analysis_runs WHERE as_of = '{AS_OF.isoformat()}'")[1][0][0]
    names, rows = fetch(url, f"SELECT * FROM {SNAPSHOT} WHERE run_id = {run_id} ORDER BY customer_id")
    after = dict(fetch(url, "SELECT id, lifecycle_stage FROM customers")[1])
    before = dict(fetch(base_url, "SELECT id, lifecycle_stage FROM customers")[1])
    changed = sorted((k, v) for k, v in after.items() if before.get(k) != v)
    types = _snapshot_types(url, names)
    with open(path, "wb") as fh:
        pickle.dump({"names": names, "rows": rows, "changed": changed, "types": types}, fh)
    return {"seconds": 0.0, "rows": len(rows), "changed": len(changed)}


def _snapshot_types(url: str, names: list[str]) -> list[str]:
    """The binary COPY type of each snapshot column, from PostgreSQL's catalogue ([] on SQLite)."""
    if not url.startswith("postgresql"):
        return []
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        found = dict(conn.execute("SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a "
                                  "WHERE a.attrelid = %s::regclass AND a.attnum > 0", (SNAPSHOT,)).fetchall())
    return [found[n] for n in names]


def step_baseline_writes(url: str, path: str = "") -> dict[str, Any]:
    """The writes no run can avoid, done raw by the driver on a fresh copy of the base, in one transaction:
    a run row, a COPY (PostgreSQL, binary) / prepared ``executemany`` (SQLite) of the same snapshot rows into
    the same table, and ONE ``UPDATE customers ... FROM`` of the same changed stages; then commit."""
    import pickle

    from sqlalchemy import create_engine

    with open(path, "rb") as fh:
        dump = pickle.load(fh)
    names, changed = dump["names"], dump["changed"]
    run_col = names.index("run_id")
    engine = create_engine(url)
    raw = engine.raw_connection()
    pg = url.startswith("postgresql")
    try:
        cur = raw.cursor()
        cur.execute("INSERT INTO value_analysis_runs (as_of, created_at, created_by, n_customers, n_purchasers, "
                    "total_revenue, settings, summary) VALUES ('2030-01-01', '2030-01-01 00:00:00', 'bench', 0, 0, 0, "
                    "'{}', '{}') RETURNING id")
        run_id = cur.fetchone()[0]
        rows = [(*r[:run_col], run_id, *r[run_col + 1:]) for r in dump["rows"]]
        prepared = time.perf_counter()
        if pg:
            with cur.copy(f"COPY {SNAPSHOT} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(dump["types"])
                for row in rows:
                    copy.write_row(row)
        else:
            cur.executemany(f"INSERT INTO {SNAPSHOT} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", rows)
        copied = time.perf_counter()
        ids, stages = [c[0] for c in changed], [c[1] for c in changed]
        if pg:
            cur.execute("UPDATE customers c SET lifecycle_stage = v.stage FROM unnest(%s::int[], %s::text[]) "
                        "AS v(id, stage) WHERE c.id = v.id", (ids, stages))
        else:
            cur.execute("CREATE TEMP TABLE bench_stages (id INTEGER PRIMARY KEY, stage TEXT)")
            cur.executemany("INSERT INTO bench_stages VALUES (?, ?)", changed)
            cur.execute("UPDATE customers SET lifecycle_stage = v.stage FROM bench_stages v WHERE customers.id = v.id")
        updated = cur.rowcount
        raw.commit()
        end = time.perf_counter()
    finally:
        raw.close()
        engine.dispose()
    copy_s, update_s = copied - prepared, end - copied
    return {"seconds": copy_s + update_s, "copy": copy_s, "update": update_s, "rows": len(rows), "updated": updated}


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
    return {"seconds": read + group, "read": read, "groupby": group, "rows": len(df), "groups": len(g)}


def step_imports(url: str) -> dict[str, Any]:
    """The floor of every step: the interpreter with NumPy, SciPy, SQLAlchemy and the plugin imported."""
    import crm_value_analysis.plugin
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


STEPS = {"imports": step_imports, "load": step_load, "run": step_run, "rerun": step_rerun, "rerun_same": step_rerun_same,
         "dump": step_dump, "baseline_writes": step_baseline_writes, "value_part": step_value_part,
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

def bench_engine(label: str, url: str, n_customers: int, n_transactions: int, seed: int,
                 reuse: bool = False, skip: tuple[str, ...] = (), n_runs: int = 3) -> dict[str, Any]:
    if reuse:  # a base loaded by an earlier invocation with the same sizes and seed
        loaded = {"seconds": 0.0, "generated": 0.0, "transactions": n_transactions, "reused": True}
    else:
        loaded = run_step("load", url, "--customers", str(n_customers), "--transactions", str(n_transactions),
                          "--seed", str(seed))
    print(f"[{label}] generated in {loaded['generated']:.1f} s, loaded {loaded['transactions']:,} transactions "
          f"in {loaded['seconds']:.1f} s", flush=True)
    res: dict[str, Any] = {"label": label, "load": loaded}
    for name in ("imports", "group_by", "group_by_strict", "value_part", "fit", "pandas"):
        if name in skip:
            continue
        res[name] = run_step(name, url)
        print(f"[{label}] {name}: {res[name]['seconds']:.2f} s, peak {res[name]['peak_mb']:.0f} MB", flush=True)
    # a run changes the base (snapshot, lifecycle stages): each of the RUNS first runs gets a fresh
    # copy of the loaded base, then the next day's run on that copy, then that run again (no stage
    # changes); the best of each is reported, as for the GROUP BY
    runs: dict[str, list[dict[str, Any]]] = {"run": [], "rerun": [], "rerun_same": [], "baseline_writes": []}
    dump = str(Path(tempfile.mkdtemp(prefix="value_bench_dump_")) / "snapshot.pickle")
    for j in range(n_runs):
        copy_url, drop = fresh_copy(url, j)
        try:
            for name in ("run", "rerun", "rerun_same"):
                runs[name].append(run_step(name, copy_url))
                print(f"[{label}] {name} #{j + 1}: {runs[name][-1]['seconds']:.2f} s, "
                      f"peak {runs[name][-1]['peak_mb']:.0f} MB", flush=True)
                if name == "run" and j == 0:
                    run_step("dump", copy_url, "--path", dump, "--base-url", url)
        finally:
            drop()
    # the fair baseline's writes: the same rows and stage changes, raw, each on a fresh copy
    for j in range(n_runs):
        copy_url, drop = fresh_copy(url, j)
        try:
            runs["baseline_writes"].append(run_step("baseline_writes", copy_url, "--path", dump))
            b = runs["baseline_writes"][-1]
            print(f"[{label}] baseline writes #{j + 1}: COPY {b['copy']:.2f} s + UPDATE {b['update']:.2f} s", flush=True)
        finally:
            drop()
    shutil.rmtree(Path(dump).parent, ignore_errors=True)
    for name, all_runs in runs.items():
        res[name] = min(all_runs, key=lambda r: r["seconds"])
        res[name]["all_seconds"] = [r["seconds"] for r in all_runs]
    return res


#: first runs measured, each on a fresh copy of the loaded base
RUNS = 3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--transactions", type=int, default=2_000_000)
    ap.add_argument("--big", action="store_true", help="10 million transactions")
    ap.add_argument("--postgres", metavar="URL", help="also benchmark this PostgreSQL database (it is emptied)")
    ap.add_argument("--keep", metavar="DIR", help="keep the SQLite database in DIR")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--print-only", action="store_true", help="print the table, leave bench/RESULTS.md alone")
    ap.add_argument("--reuse", action="store_true", help="the bases are loaded already (--keep DIR for SQLite): do not reload")
    ap.add_argument("--runs", type=int, default=RUNS, help="fresh copies per run / baseline (best of)")
    ap.add_argument("--skip", default="", help="comma-separated side steps to leave out (group_by_strict,value_part,fit,pandas)")
    ap.add_argument("--section", default="value_bench", help="the bench/RESULTS.md section to write")
    ap.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    ap.add_argument("--save", metavar="JSON", help="also save the raw results here")
    ap.add_argument("--combine", metavar="JSON", nargs="+", help="render the table from saved results, run nothing")
    ap.add_argument("--step", choices=sorted(STEPS), help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    ap.add_argument("--base-url", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        kw: dict[str, Any] = {"n_customers": args.customers, "n_transactions": args.transactions, "seed": args.seed} if args.step == "load" else {}
        kw.update({k: v for k, v in (("path", args.path), ("base_url", args.base_url)) if v})
        load_before = _load_average()
        out = STEPS[args.step](args.url, **kw)
        out["peak_mb"] = _peak_mb()
        out["load"] = max(load_before, _load_average())  # the busier end of the step (1-minute average)
        print(json.dumps(out, default=str))
        return
    n_tx = 10_000_000 if args.big else args.transactions
    skip = tuple(x for x in args.skip.split(",") if x)
    directory = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="value_bench_"))
    directory.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    if args.combine:
        results = [r for f in args.combine for r in json.loads(Path(f).read_text(encoding="utf-8"))]
    try:
        if not args.combine and not args.no_sqlite:
            results.append(bench_engine("SQLite", f"sqlite:///{directory / 'value_bench.db'}", args.customers, n_tx, args.seed,
                                    args.reuse, skip, args.runs))
        if args.postgres and not args.combine:
            results.append(bench_engine("PostgreSQL", args.postgres, args.customers, n_tx, args.seed, args.reuse, skip,
                                        args.runs))
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    if args.save:
        Path(args.save).write_text(json.dumps(results, default=str), encoding="utf-8")
    md = markdown(results, args.customers, n_tx)
    print(md)
    if not args.print_only:
        write_section(args.section, md)


if __name__ == "__main__":
    main()
