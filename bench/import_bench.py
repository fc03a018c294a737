"""Import benchmark: `crm import` against raw driver inserts of the same rows, in one run.

    .venv/bin/python bench/import_bench.py [--customers 100000] [--transactions 1000000]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--big 10000000]

SQLite: our import (CSV parsing, pydantic validation, idempotency look-ups, balances, audit,
batch hooks — everything `crm import` does) against raw ``sqlite3.executemany`` of the same
rows, already parsed, into an identical table (same DDL, indexes, pragmas, one commit per
5,000 rows). PostgreSQL: against raw psycopg ``COPY``. ``--big N`` imports N transactions
through the real `crm import` command in a subprocess and records its peak memory.
Writes its section of bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402

from crmcore import CRM  # noqa: E402
from crmcore.bulk import generate  # noqa: E402
from crmcore.bulk.importer import run_import  # noqa: E402
from crmcore.bulk.readers import read_source  # noqa: E402
from crmcore.bulk.specs import SPECS  # noqa: E402

BATCH = 5000


def write_csv(path: Path, entity: str, rows) -> int:  # type: ignore[no-untyped-def]
    cols = SPECS[entity].columns
    n = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow([r.get(c) or "" for c in cols])
            n += 1
    return n


def fresh_crm(url: str) -> CRM:
    crm = CRM.open(url, create=True, entry_points=False, config={})
    crm.upgrade()
    return crm


def ours(url: str, files: dict[str, Path]) -> dict[str, float]:
    crm = fresh_crm(url)
    out = {}
    for entity in ("customers", "transactions"):
        spec = SPECS[entity]
        rows = read_source(str(files[entity]), allowed_fields=spec.columns, required_fields=spec.required)
        res = run_import(crm, entity, rows, batch_size=BATCH)
        assert res.rejected == 0, res.first_errors
        out[entity] = res.seconds
        out[f"{entity}_rows"] = res.inserted
    crm.close()
    return out


def parsed_rows(files: dict[str, Path]) -> dict[str, list[tuple]]:
    """The rows as a raw loader would have them: parsed, typed, customer refs resolved to ids."""
    with files["customers"].open(encoding="utf-8") as f:
        r = csv.DictReader(f)
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        customers = [(row["kind"], row["name"], row["email"], row["phone"], row["country"], row["industry"], "prospect",
                      "[]", row["external_ref"], "{}", 0, now, now, 1) for row in r]
    ids = {c[8]: i + 1 for i, c in enumerate(customers)}
    with files["transactions"].open(encoding="utf-8") as f:
        r = csv.DictReader(f)
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        txs = [(ids[row["customer_ref"]], row["kind"], float(Decimal(row["amount"])), row["currency"],
                dt.datetime.fromisoformat(row["occurred_at"]).strftime("%Y-%m-%d %H:%M:%S.%f"), None, row["reference"],
                None, row["category"] or None, "import", now) for row in r]
    return {"customers": customers, "transactions": txs}


def raw_sqlite(path: Path, rows: dict[str, list[tuple]]) -> dict[str, float]:
    crm = fresh_crm(f"sqlite:///{path}")  # the identical schema, made by our migrations
    crm.close()
    con = sqlite3.connect(path)
    for p in ("foreign_keys=ON", "journal_mode=WAL", "synchronous=NORMAL", "cache_size=-65536"):
        con.execute(f"PRAGMA {p}")
    out = {}
    t = time.perf_counter()
    sql = ("INSERT INTO customers (kind, name, email, phone, country, industry, lifecycle_stage, tags, external_ref, attributes,"
           " archived, created_at, updated_at, version) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
    for i in range(0, len(rows["customers"]), BATCH):
        con.executemany(sql, rows["customers"][i:i + BATCH])
        con.commit()
    out["customers"] = time.perf_counter() - t
    con.executemany("INSERT INTO accounts (customer_id, currency, payment_terms_days, status, balance, is_default, created_at)"
                    " VALUES (?, 'EUR', 30, 'open', 0, 1, '2024-01-01')", [(i + 1,) for i in range(len(rows["customers"]))])
    con.commit()
    t = time.perf_counter()
    sql = ("INSERT INTO transactions (account_id, customer_id, kind, amount, currency, occurred_at, due_date, reference,"
           " description, category, source, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)")
    for i in range(0, len(rows["transactions"]), BATCH):  # account i belongs to customer i
        con.executemany(sql, [(r[0], *r) for r in rows["transactions"][i:i + BATCH]])
        con.commit()
    out["transactions"] = time.perf_counter() - t
    con.close()
    return out


def raw_postgres(url: str, rows: dict[str, list[tuple]]) -> dict[str, float]:
    import psycopg

    crm = fresh_crm(url)
    crm.close()
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    out = {}
    with psycopg.connect(dsn) as con:
        t = time.perf_counter()
        with con.cursor() as cur, cur.copy("COPY customers (kind, name, email, phone, country, industry, lifecycle_stage, tags,"
                                           " external_ref, attributes, archived, created_at, updated_at, version) FROM STDIN") as cp:
            for r in rows["customers"]:
                cp.write_row((*r[:10], bool(r[10]), *r[11:]))
        con.commit()
        out["customers"] = time.perf_counter() - t
        with con.cursor() as cur:
            cur.execute("INSERT INTO accounts (customer_id, currency, payment_terms_days, status, balance, is_default, created_at)"
                        " SELECT id, 'EUR', 30, 'open', 0, true, now() FROM customers")
        con.commit()
        t = time.perf_counter()
        with con.cursor() as cur, cur.copy("COPY transactions (account_id, customer_id, kind, amount, currency, occurred_at,"
                                           " due_date, reference, description, category, source, created_at) FROM STDIN") as cp:
            for r in rows["transactions"]:
                cp.write_row((r[0], *r))  # account i belongs to customer i
        con.commit()
        out["transactions"] = time.perf_counter() - t
    return out


def pg_database(base: str) -> tuple[str, callable]:  # type: ignore[valid-type]
    import psycopg

    name = f"crm_bench_{uuid.uuid4().hex[:8]}"
    admin = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return base.rsplit("/", 1)[0] + "/" + name, drop


def big_run(tmp: Path, n_tx: int, n_customers: int) -> tuple[float, float, int]:
    """`crm import transactions` of n_tx rows in a subprocess: (seconds, peak MB, rows)."""
    cust, txf, db = tmp / "big_customers.csv", tmp / "big_tx.csv", tmp / "big.db"
    write_csv(cust, "customers", generate.customer_rows(n_customers, 7))
    write_csv(txf, "transactions", generate.transaction_rows(n_tx, n_customers, 7))
    crm = [str(Path(sys.executable).with_name("crm")), "--database", f"sqlite:///{db}"]
    subprocess.run([*crm, "init"], check=True, capture_output=True)
    subprocess.run([*crm, "import", "customers", str(cust)], check=True, capture_output=True)
    t = time.perf_counter()
    proc = subprocess.run([*crm, "import", "transactions", str(txf)], capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return seconds, peak_mb, n_tx


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--transactions", type=int, default=1_000_000)
    ap.add_argument("--postgres", help="server URL (a database is created and dropped)")
    ap.add_argument("--big", type=int, default=0, help="also import this many transactions via `crm import` (peak memory)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="crm-bench-") as d:
        tmp = Path(d)
        files = {"customers": tmp / "customers.csv", "transactions": tmp / "transactions.csv"}
        write_csv(files["customers"], "customers", generate.customer_rows(args.customers, 1))
        write_csv(files["transactions"], "transactions", generate.transaction_rows(args.transactions, args.customers, 1))
        rows = parsed_rows(files)
        n = {"customers": args.customers, "transactions": args.transactions}

        lines = ["| engine | entity | rows | ours rows/s | raw rows/s | ratio (ours/raw) |", "|---|---|---|---|---|---|"]
        ours_s = ours(f"sqlite:///{tmp / 'ours.db'}", files)
        raw_s = raw_sqlite(tmp / "raw.db", rows)
        for e in ("customers", "transactions"):
            o, r = n[e] / ours_s[e], n[e] / raw_s[e]
            lines.append(f"| SQLite | {e} | {n[e]:,} | {o:,.0f} | {r:,.0f} (executemany) | **{o / r:.2f}** |")
            print(lines[-1])
        if args.postgres:
            url1, drop1 = pg_database(args.postgres)
            url2, drop2 = pg_database(args.postgres)
            try:
                ours_p = ours(url1, files)
                raw_p = raw_postgres(url2, rows)
            finally:
                drop1()
                drop2()
            for e in ("customers", "transactions"):
                o, r = n[e] / ours_p[e], n[e] / raw_p[e]
                lines.append(f"| PostgreSQL | {e} | {n[e]:,} | {o:,.0f} | {r:,.0f} (COPY) | **{o / r:.2f}** |")
                print(lines[-1])
        body = "\n".join(lines)
        body += ("\n\nOurs = `run_import` from a CSV file: parsing, pydantic validation, idempotency look-ups, default "
                 "accounts, balances, audit entries and batch hooks, one transaction per 5,000 rows. Raw = the same rows "
                 "pre-parsed, inserted by the driver into an identical table (same DDL, indexes and connection pragmas). Target on SQLite: ratio "
                 "≥ 0.25.")
        if args.big:
            secs, peak, rows_n = big_run(tmp, args.big, min(args.customers, 100_000))
            body += (f"\n\n`crm import transactions` of {rows_n:,} rows (SQLite, subprocess): {secs:,.0f} s "
                     f"({rows_n / secs:,.0f} rows/s), peak RSS **{peak:,.0f} MB** (target < 500 MB).")
            print(body.splitlines()[-1])
        write_section("import_bench", body)


if __name__ == "__main__":
    main()
