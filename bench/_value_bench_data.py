"""Value-analysis benchmark, its data: the generated skewed base, its load, fresh copies of it.

Used by bench/value_bench.py (the steps and the command line) and bench/_value_bench_report.py.
"""
from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

START = dt.date(2022, 1, 1)
DAYS = 3 * 365
AS_OF = START + dt.timedelta(days=DAYS - 1)
CHUNK = 200_000
CATEGORIES = ["kitchens", "bathrooms", "flooring", "lighting", "garden", "tools", "paint", "storage"]


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


def load(url: str, data: dict[str, np.ndarray]) -> float:
    """Insert customers, one account each, the transactions and some rated interactions."""
    from sqlalchemy import create_engine

    start = time.perf_counter()
    n = int(data["n_customers"])
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
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
