"""A bounded load run against `crm serve` on 127.0.0.1: concurrent clients mixing reads of the
360° view and interaction writes, for a fixed time. Reports throughput, p50/p95/p99 latency and
errors, and a raw baseline in the same run: the same number of clients fetching a static route of
the same server (/openapi.json, cached by FastAPI), i.e. what the HTTP stack alone costs.

    python bench/api_bench.py --pg postgresql+psycopg://postgres@127.0.0.1:5432/crm_bench \
        [--clients 50] [--seconds 60] [--workers 2] [--print-only]

Only loopback traffic, bounded in time and count; the server is stopped at the end.
Writes the "api_bench" section of bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section

MAX_REQUESTS = 2_000_000  # a hard bound whatever the duration


def prepare(url: str, customers: int) -> str:
    """Fresh schema, an admin with a token, customers with a few interactions each."""
    from sqlalchemy import create_engine, text

    from crmcore import CRM
    from crmcore.api.auth import TokenService
    from crmcore.schemas import CustomerCreate, InteractionCreate, UserCreate

    if url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    crm = CRM.open(url, entry_points=False, create=True, config={})
    crm.upgrade()
    with crm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="bench", display_name="Bench", roles=["admin"]))
    with crm.unit_of_work("bench") as uow:
        token = TokenService(uow).create("bench", "load")[1]
        for i in range(customers):
            c = uow.customers.create(CustomerCreate(name=f"Load {i}", external_ref=f"L{i}"))
            for k in range(3):
                uow.interactions.log(c.id, InteractionCreate(channel="phone", subject=f"call {k}"))
    crm.close()
    return token


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def load(base: str, token: str, clients: int, seconds: float, customers: int, mode: str) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    counts = {"read": 0, "write": 0}
    deadline = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {token}"}

    async def client(n: int) -> None:
        rnd = random.Random(n)
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
            while time.perf_counter() < deadline and len(latencies) < MAX_REQUESTS:
                cid = rnd.randint(1, customers)
                start = time.perf_counter()
                try:
                    if mode == "raw":
                        r = await http.get("/openapi.json")
                        kind = "read"
                    elif rnd.random() < 0.7:
                        r = await http.get(f"/customers/{cid}")
                        kind = "read"
                    else:
                        r = await http.post(f"/customers/{cid}/interactions",
                                            json={"channel": "web", "direction": "inbound", "subject": f"visit {n}"})
                        kind = "write"
                    ok = r.status_code < 300
                    key = str(r.status_code)
                except httpx.HTTPError as e:
                    ok, key = False, type(e).__name__
                latencies.append(time.perf_counter() - start)
                if ok:
                    counts[kind] += 1
                else:
                    errors[key] = errors.get(key, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 100 else [max(latencies or [0])] * 99
    return {"requests": len(latencies), "rps": len(latencies) / elapsed, "p50": q[49] * 1000, "p95": q[94] * 1000,
            "p99": q[98] * 1000, "errors": errors, **counts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg", help="PostgreSQL URL of a database the benchmark may empty (default: SQLite in a temp dir)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--customers", type=int, default=500)
    ap.add_argument("--print-only", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    url = a.pg or f"sqlite:///{tmp}/api.db"
    token = prepare(url, a.customers)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("CRM_USER",)}
    crm_bin = str(Path(sys.executable).with_name("crm"))
    server = subprocess.Popen([crm_bin, "--database", url, "--user", "bench", "serve", "--port", str(port), "--workers", str(a.workers),
                               "--deliver-every", "0"], cwd=tmp, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        raw = asyncio.run(load(base, token, a.clients, min(10.0, a.seconds), a.customers, "raw"))
        ours = asyncio.run(load(base, token, a.clients, a.seconds, a.customers, "mixed"))
    finally:
        server.terminate()
        server.wait(30)
    engine = "PostgreSQL" if a.pg else "SQLite"
    body = (f"{engine}, `crm serve --workers {a.workers}`, {a.clients} concurrent clients on 127.0.0.1, "
            f"{a.customers} customers; mixed run {a.seconds:.0f} s (70% GET /customers/{{id}} 360° view, "
            "30% POST interaction), raw run 10 s of GET /openapi.json (the HTTP stack alone).\n\n"
            "| run | requests | req/s | p50 ms | p95 ms | p99 ms | errors |\n|---|---|---|---|---|---|---|\n"
            + "\n".join(f"| {name} | {r['requests']:,} | {r['rps']:,.0f} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | "
                        f"{sum(r['errors'].values())} {r['errors'] or ''} |" for name, r in (("mixed (ours)", ours), ("raw", raw)))
            + f"\n\nMixed: {ours['read']:,} reads, {ours['write']:,} writes; throughput ratio ours/raw "
              f"**{ours['rps'] / raw['rps']:.2f}**. Client and server share the machine's 2 cores.")
    print(body)
    if not a.print_only:
        write_section("api_bench", body)


if __name__ == "__main__":
    main()
