"""`crm serve` for real: a uvicorn process on 127.0.0.1, a token from `crm user token create`, a read and a write."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from crmcore import CRM
from crmcore.api.auth import TokenService
from crmcore.schemas import UserCreate


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_crm_serve_answers_over_http(crm: CRM, crm_url: str, tmp_path: Path) -> None:
    with crm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
    with crm.unit_of_work("root") as uow:
        token = TokenService(uow).create("root", "serve")[1]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("CRM_DATABASE_URL", "CRM_USER")}
    crm_bin = str(Path(sys.executable).with_name("crm"))
    proc = subprocess.Popen([crm_bin, "--database", crm_url, "--user", "root", "serve", "--port", str(port), "--deliver-every", "0"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/openapi.json", headers={"Authorization": f"Bearer {token}"}, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError(f"the server did not start: {proc.stdout.read() if proc.stdout else ''}")
        h = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{base}/customers", timeout=5).status_code == 401
        created = httpx.post(f"{base}/customers", json={"name": "Over HTTP"}, headers=h, timeout=5)
        assert created.status_code == 201
        view = httpx.get(f"{base}/customers/{created.json()['id']}", headers=h, timeout=5)
        assert view.status_code == 200 and view.json()["customer"]["name"] == "Over HTTP"
    finally:
        proc.terminate()
        proc.wait(10)


def test_crm_serve_without_database_is_one_line(tmp_path: Path) -> None:
    crm_bin = str(Path(sys.executable).with_name("crm"))
    env = {k: v for k, v in os.environ.items() if k not in ("CRM_DATABASE_URL", "CRM_USER")}
    r = subprocess.run([crm_bin, "--database", f"sqlite:///{tmp_path}/missing.db", "serve"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 2 and "run `crm init` first" in r.stderr and "Traceback" not in r.stderr
