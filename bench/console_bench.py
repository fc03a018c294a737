"""The web console under load, against the same data served as JSON by the HTTP API, in one run.

50 concurrent signed-in clients (each with its own console session) for a fixed time over
(a) the 360° page of a customer with 1,000 timeline entries and (b) the customer list of 100,000
customers (a keyset page at a random position), then the same clients over the JSON of the same
data (``GET /customers/{id}?interactions=25``, the 25 latest entries the page shows, and
``GET /customers?after=N&limit=25``). Reports p50/p95/p99 latency and throughput of each; the
goal is a page's p95 at most 1.5x the JSON's.

    python bench/console_bench.py --pg postgresql+psycopg://postgres@127.0.0.1:5432/crm_bench \
        [--clients 50] [--seconds 60] [--workers 2] [--customers 100000] [--print-only]

Only loopback traffic, each run bounded in time and in requests; `crm serve` runs in a
subprocess and is stopped at the end. The database given is emptied. Writes the
"console_bench" section of bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section

MAX_REQUESTS = 1_000_000  # per run, whatever the duration
PASSWORD = "console bench password"
TIMELINE = 1000
PAGE = 25  # the console's page and timeline size, asked of the API too
CONFIG = """
[console]
# sign-in is not what is measured: a cheap hash keeps 50 sign-ins short
argon2_time_cost = 1
argon2_memory_kib = 8192
argon2_parallelism = 1
"""


def prepare(url: str, customers: int, tmp: Path) -> tuple[str, int]:
    """Fresh schema; an admin with a token and a password; the big customer; ``customers`` more."""
    from sqlalchemy import create_engine, insert, text

    from crmcore import CRM
    from crmcore.api.auth import TokenService
    from crmcore.console.auth import set_password
    from crmcore.enums import Channel, CustomerKind, Direction, InteractionKind, LifecycleStage, TransactionKind
    from crmcore.models import Contact, Customer, Interaction
    from crmcore.models.customer import fold
    from crmcore.schemas import CustomerCreate, TransactionCreate, UserCreate

    if url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    (tmp / "crm.toml").write_text(CONFIG)
    import tomllib

    crm = CRM.open(url, entry_points=False, create=True, config=tomllib.loads(CONFIG))
    crm.upgrade()
    with crm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="bench", display_name="Bench", roles=["admin"]))
    t0 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    with crm.unit_of_work("bench") as uow:
        token = TokenService(uow).create("bench", "load")[1]
        set_password(uow, "bench", PASSWORD)
        big = uow.customers.create(CustomerCreate(name="Big Timeline AG", external_ref="BIG", country="DE", owner="bench"))
        for i in range(10):
            uow.accounts.post(big.id, TransactionCreate(kind=TransactionKind.INVOICE, amount=Decimal("1200.50"),
                                                        currency="EUR", reference=f"INV-{i}", occurred_at=t0))
        uow.session.execute(insert(Interaction), [
            {"customer_id": big.id, "channel": Channel.PHONE, "direction": Direction.INBOUND, "kind": InteractionKind.SALE,
             "subject": f"Call {i} about the order", "occurred_at": t0 + dt.timedelta(hours=i), "source": "core"}
            for i in range(TIMELINE)])
        uow.session.execute(insert(Contact), [{"customer_id": big.id, "name": f"Contact {i}", "email": f"c{i}@big.example.com"}
                                              for i in range(10)])
        big_id = big.id
    now = dt.datetime.now(dt.UTC)
    with crm.engine.begin() as conn:
        for start in range(0, customers, 10_000):
            conn.execute(insert(Customer), [
                {"kind": CustomerKind.ORGANIZATION, "name": f"Customer {i:06d} GmbH", "search_name": fold(f"Customer {i:06d} GmbH"),
                 "country": "DE", "lifecycle_stage": LifecycleStage.ACTIVE, "tags": ["trade"], "external_ref": f"C{i:06d}",
                 "attributes": {}, "archived": False, "created_at": now, "updated_at": now, "version": 1}
                for i in range(start, min(start + 10_000, customers))])
        if url.startswith("postgresql"):
            conn.execute(text("ANALYZE"))
    crm.close()
    return token, big_id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def sign_in(http: httpx.AsyncClient) -> None:
    form = await http.get("/console/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf, "no CSRF token on the sign-in page"
    r = await http.post("/console/signin", data={"csrf": csrf.group(1), "username": "bench", "password": PASSWORD, "next": ""})
    assert r.status_code == 303, f"sign-in failed: {r.status_code}"


def target(scenario: str, rnd: random.Random, big: int, customers: int) -> tuple[str, str]:
    """(path, a text the answer must contain) of one request."""
    after = rnd.randrange(0, max(1, customers - PAGE))
    return {
        "page 360": (f"/console/customers/{big}", "Call 999 about the order"),
        "json 360": (f"/customers/{big}?interactions={PAGE}", "Call 999 about the order"),
        "page list": (f"/console/customers?after={after}", "GmbH"),
        "json list": (f"/customers?after={after}&limit={PAGE}", "GmbH"),
    }[scenario]


async def load(base: str, token: str, clients: int, seconds: float, scenario: str, big: int, customers: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {token}"} if scenario.startswith("json") else {}
    https = [httpx.AsyncClient(base_url=base, headers=headers, timeout=60, follow_redirects=False) for _ in range(clients)]
    try:
        if scenario.startswith("page"):  # one session each, all at once just before the clock starts
            await asyncio.gather(*(sign_in(http) for http in https))
        deadline = time.perf_counter() + seconds

        async def client(n: int, http: httpx.AsyncClient) -> None:
            rnd = random.Random(n)
            while time.perf_counter() < deadline and len(latencies) < MAX_REQUESTS:
                path, expect = target(scenario, rnd, big, customers)
                start = time.perf_counter()
                try:
                    r = await http.get(path)
                    key = "" if r.status_code == 200 and expect in r.text else str(r.status_code)
                except httpx.HTTPError as e:
                    key = type(e).__name__
                latencies.append(time.perf_counter() - start)
                if key:
                    errors[key] = errors.get(key, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(client(i, h) for i, h in enumerate(https)))
        elapsed = time.perf_counter() - started
    finally:
        for http in https:
            await http.aclose()
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 100 else [max(latencies or [0])] * 99
    return {"requests": len(latencies), "rps": len(latencies) / elapsed, "p50": q[49] * 1000, "p95": q[94] * 1000,
            "p99": q[98] * 1000, "errors": errors}


def serve(url: str, tmp: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("CRM_USER", "CRM_DATABASE_URL")}
    crm_bin = str(Path(sys.executable).with_name("crm"))
    server = subprocess.Popen([crm_bin, "--database", url, "--user", "bench", "serve", "--host", "127.0.0.1", "--port", str(port),
                               "--workers", str(workers), "--deliver-every", "0"], cwd=tmp, env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if server.poll() is not None:
            raise SystemExit(f"crm serve exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/console/signin", timeout=1).status_code == 200:
                return server, base
        except httpx.HTTPError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("crm serve did not answer in 60 s")


def report(runs: dict[str, dict[str, Any]], a: argparse.Namespace, engine: str) -> str:
    rows = "\n".join(f"| {name} | {r['requests']:,} | {r['rps']:,.0f} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | "
                     f"{sum(r['errors'].values())} {r['errors'] or ''} |" for name, r in runs.items())
    ratios = []
    for what in ("360", "list"):
        ratio = runs[f"page {what}"]["p95"] / runs[f"json {what}"]["p95"]
        ratios.append(f"{what}: p95 page/JSON **{ratio:.2f}** ({'met' if ratio <= 1.5 else 'MISSED'})")
    return (f"{engine}, `crm serve --workers {a.workers}`, {a.clients} concurrent clients on 127.0.0.1 (each page client "
            f"signed in with its own console session; each JSON client with a bearer token), {a.seconds:.0f} s per run. "
            f"360: a customer with {TIMELINE:,} timeline entries (the page shows the latest {PAGE}, the JSON is asked for "
            f"the same {PAGE}); list: a keyset page of {PAGE} at a random position among {a.customers:,} customers.\n\n"
            "| run | requests | req/s | p50 ms | p95 ms | p99 ms | errors |\n|---|---|---|---|---|---|---|\n" + rows +
            "\n\nGoal p95 page ≤ 1.5x JSON: " + "; ".join(ratios) + f". Client and server share the machine's "
            f"{os.cpu_count()} cores (load average at the end: {os.getloadavg()[0]:.1f}).")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg", help="PostgreSQL URL of a database the benchmark may empty (default: SQLite in a temp dir)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--print-only", action="store_true")
    a = ap.parse_args()
    if not (1 <= a.clients <= 500 and 1 <= a.seconds <= 600 and 100 <= a.customers <= 10_000_000):
        ap.error("--clients 1..500, --seconds 1..600, --customers 100..10,000,000")
    tmp = Path(tempfile.mkdtemp())
    url = a.pg or f"sqlite:///{tmp}/console.db"
    token, big = prepare(url, a.customers, tmp)
    server, base = serve(url, tmp, a.workers)
    runs: dict[str, dict[str, Any]] = {}
    try:
        for scenario in ("page 360", "json 360", "page list", "json list"):
            asyncio.run(load(base, token, a.clients, min(3.0, a.seconds), scenario, big, a.customers))  # warm
            runs[scenario] = asyncio.run(load(base, token, a.clients, a.seconds, scenario, big, a.customers))
            print(scenario, {k: round(v, 1) if isinstance(v, float) else v for k, v in runs[scenario].items()}, flush=True)
    finally:
        server.terminate()
        server.wait(30)
    body = report(runs, a, "PostgreSQL" if a.pg else "SQLite")
    print(body)
    if not a.print_only:
        write_section("console_bench", body)


if __name__ == "__main__":
    main()
