"""`crm service sla check` and `crm service report` on N generated tickets vs a plain GROUP BY.

The baselines are the raw statements the two commands cannot do without, sent through the
driver in the same run, on the same rows:

- report: ONE plain ``SELECT key, count(*), count(*) FILTER (WHERE ...) ..., avg(minutes)
  FROM service_tickets GROUP BY key`` with the same counts the report prints (backlog, ageing,
  SLA attainment, complaint handling, reopens) and averages where the report has exact median
  and p90, grouped by the same key expression; ours is ``crm_service.report.report(uow, by)``
  (what ``crm service report [--by ...] --json`` runs: that plus the percentiles, CSAT and the
  return-visit rate).
- sla check: the raw ``UPDATE service_tickets SET <breaches, escalated_at, assignee, priority>
  WHERE <running and late>`` of the same rows, committed (then undone from a snapshot, untimed);
  ours is ``crm_service.sla.check(uow)`` (what ``crm service sla check`` runs: that plus the
  escalation note and audit entry per ticket and the ids returned), then once more with nothing
  left to do (idempotent).

Best of 3 each (the first sla check and its baseline once: they write). Goal: ratio <= 2.

    python bench/service_bench.py [--tickets 1000000] [--pg URL] [--engine both|sqlite|pg]
                                  [--save FILE] [--merge FILE ...] [--print-only]

Writes the "service_bench" section of bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section

NOW = dt.datetime(2030, 6, 5, 12, 0, tzinfo=dt.UTC)
CHUNK = 100_000
CUSTOMERS, AGENTS = 5_000, 20
TEAMS = ("support", "billing", "field")
CATEGORIES = ("product quality", "delivery", "billing", "staff attitude", "other")
ACTIVE, RUNNING = "('new', 'open', 'waiting')", "('new', 'open')"
# the counts of crm_service.report, written out as plain SQL conditions (no percentiles)
COUNTS = (f"status IN {ACTIVE}", f"status NOT IN {ACTIVE}",
          f"status NOT IN {ACTIVE} AND first_response_breached_at IS NULL AND resolution_breached_at IS NULL",
          "kind = 'complaint'",
          "kind = 'complaint' AND resolution_minutes IS NOT NULL AND resolution_breached_at IS NULL",
          f"resolution_minutes IS NOT NULL OR status NOT IN {ACTIVE}",
          f"(resolution_minutes IS NOT NULL OR status NOT IN {ACTIVE}) AND reopen_count > 0",
          f"status IN {ACTIVE} AND opened_at > :d1", f"status IN {ACTIVE} AND opened_at > :d3 AND opened_at <= :d1",
          f"status IN {ACTIVE} AND opened_at > :d7 AND opened_at <= :d3", f"status IN {ACTIVE} AND opened_at <= :d7")
# the same key expressions as crm_service.report._key
KEYS = {"sqlite": {"agent": "assignee_id + 0", "team": "team", "category": "category",
                   "month": "substr(opened_at, 1, 7)"},
        "postgresql": {"agent": "assignee_id", "team": "team", "category": "category",
                       "month": "to_char(opened_at AT TIME ZONE 'UTC', 'YYYY-MM')"}}
FR = "first_response_at IS NULL AND first_response_breached_at IS NULL AND first_response_due < :now"
RES = "resolved_at IS NULL AND resolution_breached_at IS NULL AND resolution_due < :now"
ESC = "escalated_at IS NULL"
SLA_UPDATE = (f"UPDATE service_tickets SET "
              f"first_response_breached_at = CASE WHEN {FR} THEN first_response_due ELSE first_response_breached_at END, "
              f"resolution_breached_at = CASE WHEN {RES} THEN resolution_due ELSE resolution_breached_at END, "
              f"escalated_at = CASE WHEN {ESC} THEN :now ELSE escalated_at END, "
              f"assignee_id = CASE WHEN {ESC} THEN :boss ELSE assignee_id END, "
              f"priority = CASE WHEN {ESC} THEN (CASE priority WHEN 'low' THEN 'normal' WHEN 'normal' THEN 'high' "
              f"ELSE 'urgent' END) ELSE priority END "
              f"WHERE status IN {RUNNING} AND (({FR}) OR ({RES}) OR ({ESC} AND (first_response_breached_at IS NOT NULL "
              f"OR resolution_breached_at IS NOT NULL)))")
SNAP_COLS = "first_response_breached_at, resolution_breached_at, escalated_at, assignee_id, priority"


def report_sql(dialect: str, by: str | None) -> str:
    """The plain GROUP BY baseline of ``report(by)``."""
    key = "0" if by is None else KEYS[dialect][by]
    counts = ", ".join(f"count(*) FILTER (WHERE {c})" for c in COUNTS)
    return (f"SELECT {key}, count(*), {counts}, avg(first_response_minutes), avg(resolution_minutes) "
            "FROM service_tickets" + ("" if by is None else f" GROUP BY {key}"))
CONFIG = {"service": {"teams": {t: {"manager": "boss"} for t in TEAMS}, "default_team": "support"}}


def _crm(url: str) -> Any:
    from crm_service import plugin

    from crmcore import CRM

    crm = CRM.open(url, plugins=[plugin], entry_points=False, create=True, config=CONFIG)
    crm.clock = lambda: NOW
    return crm


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
    from crmcore.schemas import UserCreate

    with crm.unit_of_work("bench") as uow:
        uow.users.add(UserCreate(username="boss", display_name="Boss", roles=["admin"]))
    with crm.unit_of_work("boss") as uow:
        for i in range(AGENTS):
            uow.users.add(UserCreate(username=f"agent{i}", display_name=f"Agent {i}", roles=["support_agent"]))
    crm.close()


def _stamp(base: np.datetime64, minutes: np.ndarray) -> np.ndarray:
    """UTC times as the app stores them on SQLite (``YYYY-MM-DD HH:MM:SS.ffffff``; PG reads them in UTC)."""
    return np.char.replace((base + minutes.astype("timedelta64[m]")).astype("datetime64[us]").astype(str), "T", " ")


def ticket_rows(rng: np.random.Generator, lo: int, hi: int, n: int) -> list[tuple[Any, ...]]:
    """Tickets ``lo..hi``: mostly closed, some open and late, a realistic spread of times."""
    k = hi - lo
    now = np.datetime64(NOW.replace(tzinfo=None), "m")
    opened_min = -rng.integers(60, 730 * 1440, k)
    status = np.array(["new", "open", "waiting", "resolved", "closed"])[rng.choice(5, k, p=[.04, .05, .03, .18, .70])]
    active = np.isin(status, ["new", "open", "waiting"])
    opened_min[active] = -rng.integers(10, 4 * 1440, active.sum())  # the backlog is recent
    frt = np.round(rng.lognormal(5.0, 1.0, k)).astype(np.int64)
    res = frt + np.round(rng.lognormal(7.0, 1.0, k)).astype(np.int64)
    frt_due, res_due = opened_min + 480, opened_min + 2400
    answered = status != "new"
    done = np.isin(status, ["resolved", "closed"])
    fr_breach = answered & (frt > 480)
    res_breach = done & (res > 2400)
    opened, s_frt_due, s_res_due = _stamp(now, opened_min), _stamp(now, frt_due), _stamp(now, res_due)
    s_fr_at, s_res_at = _stamp(now, opened_min + frt), _stamp(now, opened_min + res)
    cust = rng.integers(1, CUSTOMERS + 1, k)
    agent = rng.integers(2, AGENTS + 2, k)
    kind = np.array(["complaint", "inquiry", "request", "suggestion"])[rng.choice(4, k, p=[.3, .4, .2, .1])]
    cat = np.array(CATEGORIES)[rng.integers(0, 5, k)]
    prio = np.array(["low", "normal", "high", "urgent"])[rng.choice(4, k, p=[.2, .5, .25, .05])]
    team = np.array(TEAMS)[rng.integers(0, 3, k)]
    reopened = rng.random(k) < 0.05
    created = NOW.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    rows = []
    for j in range(k):
        a, d = bool(answered[j]), bool(done[j])
        rows.append((int(cust[j]), "email", str(kind[j]), str(cat[j]), str(prio[j]), f"Ticket {lo + j}", int(agent[j]),
                     str(team[j]), str(status[j]), f"T{lo + j:08d}", opened[j], s_frt_due[j], s_res_due[j],
                     s_fr_at[j] if a else None, s_res_at[j] if d else None,
                     s_frt_due[j] if fr_breach[j] else None, s_res_due[j] if res_breach[j] else None,
                     int(frt[j]) if a else None, int(res[j]) if d else None, 0, int(reopened[j]), created))
    return rows


TICKET_COLS = ("customer_id, channel, kind, category, priority, subject, assignee_id, team, status, external_ref, "
               "opened_at, first_response_due, resolution_due, first_response_at, resolved_at, "
               "first_response_breached_at, resolution_breached_at, first_response_minutes, resolution_minutes, "
               "paused_minutes, reopen_count, created_at")


def load(url: str, n: int, seed: int) -> float:
    """Customers, n tickets, CSAT answers for a fifth of the resolved ones, visits for a third."""
    from sqlalchemy import create_engine

    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    now = NOW.strftime("%Y-%m-%d %H:%M:%S")
    engine = create_engine(url)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if not url.startswith("sqlite"):
            cur.execute("SET TIME ZONE 'UTC'")
        if url.startswith("sqlite"):
            def put(table: str, cols: str, rows: list[tuple[Any, ...]]) -> None:
                cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * (cols.count(',') + 1))})", rows)
        else:
            def put(table: str, cols: str, rows: list[tuple[Any, ...]]) -> None:
                with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        put("customers", "kind, name, search_name, lifecycle_stage, tags, external_ref, attributes, archived, created_at, "
            "updated_at, version", [("organization", f"Customer {i}", f"customer {i}", "prospect", "[]", f"C{i:07d}", "{}",
                                     False, now, now, 1) for i in range(CUSTOMERS)])
        for lo in range(0, n, CHUNK):
            rows = ticket_rows(rng, lo, min(lo + CHUNK, n), n)
            put("service_tickets", TICKET_COLS, rows)
            done = [(i + lo + 1, r) for i, r in enumerate(rows) if r[8] in ("resolved", "closed")]
            pick = rng.random(len(done))
            put("service_survey_answers", "customer_id, ticket_id, kind, score, answered_at, dedupe, source",
                [(r[0], tid, "csat", int(rng.integers(1, 6)), r[14], f"csat:t{tid}", "bench")
                 for (tid, r), p in zip(done, pick, strict=True) if p < 0.2])
            put("service_visits", "reason, customer_id, ticket_id, agent_id, due_at, done_at, satisfaction, problem",
                [("ticket", r[0], tid, r[6], r[14], r[14] if p < 0.25 else None, 4 if p < 0.25 else None, False)
                 for (tid, r), p in zip(done, pick, strict=True) if p < 0.33])
        cur.execute("ANALYZE")
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


def _params(sqlite: bool) -> dict[str, Any]:
    fmt = (lambda t: t.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")) if sqlite else (lambda t: t)
    return {"now": fmt(NOW), **{f"d{d}": fmt(NOW - dt.timedelta(days=d)) for d in (1, 3, 7)}}


def sla_baseline(crm: Any, sqlite: bool) -> tuple[float, int]:
    """The raw UPDATE of the late rows, committed and timed; then the rows put back as they were."""
    from sqlalchemy import text

    p = {**_params(sqlite), "boss": 1}
    with crm.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_snap"))
        conn.execute(text(f"CREATE TABLE bench_snap AS SELECT id, {SNAP_COLS} FROM service_tickets "
                          f"WHERE status IN {RUNNING}"))
        conn.execute(text("CREATE UNIQUE INDEX bench_snap_id ON bench_snap (id)"))
    t = time.perf_counter()
    with crm.engine.begin() as conn:
        n = conn.execute(text(SLA_UPDATE), p).rowcount
    seconds = time.perf_counter() - t
    with crm.engine.begin() as conn:
        conn.execute(text("UPDATE service_tickets SET " + ", ".join(f"{c} = s.{c}" for c in SNAP_COLS.split(", "))
                          + " FROM bench_snap s WHERE s.id = service_tickets.id"))
        conn.execute(text("DROP TABLE bench_snap"))
    if not sqlite:  # the UPDATE and the undo left two dead versions per late row: the check gets a clean
        with crm.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:  # table too
            conn.execute(text("VACUUM ANALYZE service_tickets"))
    return seconds, n


def sla_baseline_again(crm: Any, sqlite: bool) -> int:
    """The raw UPDATE once everything is marked: it finds no row (committed, nothing to undo)."""
    from sqlalchemy import text

    with crm.engine.begin() as conn:
        return int(conn.execute(text(SLA_UPDATE),
                                {**_params(sqlite), "boss": 1}).rowcount)


def measure(url: str) -> dict[str, Any]:
    from crm_service import report, sla
    from sqlalchemy import text

    crm = _crm(url)
    dialect = crm.engine.dialect.name
    out: dict[str, Any] = {"engine": "SQLite" if dialect == "sqlite" else "PostgreSQL"}
    params = _params(dialect == "sqlite")
    try:
        def baseline(by: str | None, serial: bool = False) -> int:
            with crm.engine.connect() as conn:
                if serial:  # PostgreSQL without parallel workers (string_agg has none before PG 16)
                    conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
                return len(conn.execute(text(report_sql(dialect, by)), params).all())

        def rep(by: str | None) -> Any:
            with crm.unit_of_work("boss", read_only=True) as uow:
                return report.report(uow, by)

        def check() -> dict[str, Any]:
            with crm.unit_of_work("boss") as uow:
                return sla.check(uow)

        for by in (None, "agent", "team", "category", "month"):
            name = "report" if by is None else f"report_{by}"
            out[f"{name}_base"] = _best(lambda by=by: baseline(by))[0]
            out[name], result = _best(lambda by=by: rep(by))
            if dialect == "postgresql":
                out[f"{name}_serial"] = _best(lambda by=by: baseline(by, serial=True), 2)[0]
            if by is None:
                out["tickets"] = result["total"]["tickets"]
        out["check_first_base"], out["base_rows"] = sla_baseline(crm, dialect == "sqlite")
        t = time.perf_counter()
        first = check()
        out["check_first"] = time.perf_counter() - t
        out["escalated"] = len(first["escalated"])
        out["check_again"], again = _best(check)
        if again["escalated"] or again["first_response_breaches"] or again["resolution_breaches"]:
            raise SystemExit("sla check is not idempotent")
        out["check_again_base"] = _best(lambda: sla_baseline_again(crm, dialect == "sqlite"))[0]
    finally:
        crm.close()
    return out


COLS = ("report", "report_agent", "report_team", "report_category", "report_month", "check_first", "check_again")


def body(rows: list[dict[str, Any]], tickets: int) -> str:
    """The RESULTS.md text: per engine, each measure's seconds, its baseline's, and the ratio."""
    head = ("| engine | measure | baseline s | ours s | ratio |\n|---|---|---:|---:|---:|\n")
    head = head.replace("| ratio |\n|---|---|---:|---:|---:|", "| ratio | ratio to a serial baseline |\n|---|---|---:|---:|---:|---:|")
    table = "\n".join(f"| {r['engine']} | {c.replace('_', ' ')} | {r[c + '_base']:.3f} | {r[c]:.3f} | "
                      f"**{r[c] / r[c + '_base']:.2f}x** | "
                      + (f"{r[c] / r[c + '_serial']:.2f}x |" if c + "_serial" in r else "|") for r in rows for c in COLS)
    return (f"{tickets:,} tickets ({CUSTOMERS:,} customers, {AGENTS} agents, 3 teams; ~12% open, a fifth of the "
            "resolved ones with a CSAT answer, a third with a return visit), best of 3 (the first sla check and "
            "its baseline once: they write).\n\n" + head + table + "\n\n"
            "Baselines (the raw statement each command cannot do without, through the driver, same run, same "
            "rows): report = ONE plain `SELECT key, count(*), count(*) FILTER (WHERE ...) x11, "
            "avg(first_response_minutes), avg(resolution_minutes) FROM service_tickets GROUP BY key` with the "
            "counts the report prints and averages where it prints exact median and p90, grouped by the report's "
            "own key expression (on SQLite `assignee_id + 0` and `substr(opened_at, 1, 7)`: a plain "
            "`GROUP BY assignee_id` walks the assignee index with a random row read per ticket and takes ~2x "
            "longer at 1M); check first = the raw `UPDATE service_tickets SET <both breaches, escalated_at, "
            "assignee, priority> WHERE status IN ('new','open') AND <late>` of the same "
            + ", ".join(f"{r['base_rows']:,}" for r in rows) + " rows, committed (undone from a snapshot, untimed); "
            "check again = that UPDATE when nothing is left. An earlier version of this bench compared everything "
            "with `SELECT team, count(*), avg(..), avg(..) GROUP BY team` (two averages, a read): that is not the "
            "work either command has to do (the ageing/SLA counts, the writes).\n\n"
            "Ours: report = `crm service report --json [--by ...]`: the baseline's statement with each group's "
            "minutes as one `group_concat` string (SQLite) or one `service_int_agg` array sent as `array_send` "
            "bytes (PostgreSQL: a parallel-safe aggregate of migration service_0005, so the statement runs in "
            "parallel workers like the baseline) read by NumPy as int64 (exact median and p90), plus the CSAT "
            "distribution (on PostgreSQL per group: each group's ticket ids ride along and the answers, fetched "
            "as two arrays, are labelled in NumPy; otherwise a second statement) and the return-visit rate. "
            "Per-group histograms of the minutes (`GROUP BY key, minutes`, which PostgreSQL runs in parallel) "
            "were measured instead of the strings and were slower (20k-110k rows per report at 200k tickets, "
            "two more scans); so were a UNION ALL of a parallel count branch and a string branch. "
            "check first = `crm service sla check` marking "
            "and escalating " + ", ".join(f"{r['escalated']:,} ({r['engine']})" for r in rows) + " tickets: the "
            "same UPDATE (on PostgreSQL ONE statement with the notes and audit entries as data-modifying CTEs; on "
            "SQLite the flags read under the write lock, the UPDATE ... RETURNING, then the notes and audit "
            "entries as two executemany INSERTs): three rows written per ticket against the baseline's one. "
            "On PostgreSQL 15 the baseline's plain aggregates run in parallel (a Gather over 2 workers: three "
            "processes); `string_agg`/`array_agg` have no combine function before PostgreSQL 16, hence "
            "`service_int_agg`; the last column divides by the same baseline with "
            "`max_parallel_workers_per_gather = 0` for reference. "
            "Goal: ratio <= 2. Shared 2-core machine: single cells are noisy; the load average (1/5/15 min) "
            "before and after each engine's measurement: " + "; ".join(f"{r['engine']} {r.get('loadavg', '?')}"
                                                                       for r in rows) + ".")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickets", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pg", help="PostgreSQL URL of a database the benchmark may empty (skipped when not given)")
    ap.add_argument("--engine", choices=("both", "sqlite", "pg"), default="both")
    ap.add_argument("--save", help="also write the measured rows to this JSON file")
    ap.add_argument("--merge", nargs="+", help="measure nothing: write the section from rows saved by --save")
    ap.add_argument("--note", default="", help="a sentence appended to the section (e.g. why the size differs)")
    ap.add_argument("--print-only", action="store_true")
    a = ap.parse_args()
    rows: list[dict[str, Any]] = []
    if a.merge:
        rows = [r for f in a.merge for r in json.loads(Path(f).read_text())]
    else:
        urls = ([] if a.engine == "pg" else ["sqlite"]) + ([a.pg] if a.pg and a.engine != "sqlite" else [])
        with tempfile.TemporaryDirectory() as tmp:
            for url in urls:
                url = f"sqlite:///{tmp}/bench.db" if url == "sqlite" else url
                fresh(url)
                seconds = load(url, a.tickets, a.seed)
                before = Path("/proc/loadavg").read_text().split()[:3]
                r = measure(url)
                r["load"] = seconds
                r["loadavg"] = f"{' '.join(before)} -> {' '.join(Path('/proc/loadavg').read_text().split()[:3])}"
                rows.append(r)
                print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}, flush=True)
        if a.save:
            Path(a.save).write_text(json.dumps([{**r, "tickets_n": a.tickets} for r in rows]))
    text = body(rows, rows[0].get("tickets_n", a.tickets) if rows else a.tickets) + (f"\n\n{a.note}" if a.note else "")
    if not a.print_only:
        write_section("service_bench", text)
    print(text)


if __name__ == "__main__":
    main()
