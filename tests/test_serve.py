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
        out = proc.communicate(timeout=10)[0]
    # the address on start, then one access-log line per request (method, path, status)
    assert f"crm serve: API on http://127.0.0.1:{port}/" in out and "access log on" in out
    assert '"GET /customers HTTP/1.1" 401' in out and '"POST /customers HTTP/1.1" 201' in out
    assert "Traceback" not in out


def _serve(crm_url: str, tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("CRM_DATABASE_URL", "CRM_USER")}
    crm_bin = str(Path(sys.executable).with_name("crm"))
    proc = subprocess.Popen([crm_bin, "--database", crm_url, "serve", "--port", str(port), "--deliver-every", "0", *args],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/customers", timeout=1)
            return proc, port
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.terminate()
    raise AssertionError(f"the server did not start: {proc.communicate(timeout=10)[0]}")


def test_access_log_can_be_turned_off_and_docs_are_offline(crm: CRM, crm_url: str, tmp_path: Path) -> None:
    """``--no-access-log`` (or ``[api] access_log = false``) keeps requests out of the log; with
    ``[api] public_docs`` /docs loads its Swagger UI from the server itself, no CDN."""
    (tmp_path / "crm.toml").write_text("[api]\npublic_docs = true\n")
    proc, port = _serve(crm_url, tmp_path, "--no-access-log")
    try:
        page = httpx.get(f"http://127.0.0.1:{port}/docs", timeout=5)
        assert page.status_code == 200 and "cdn" not in page.text.lower() and "/docs/assets/swagger-ui-bundle.js" in page.text
        asset = httpx.get(f"http://127.0.0.1:{port}/docs/assets/swagger-ui-bundle.js", timeout=5)
        assert asset.status_code == 200 and len(asset.content) > 100_000
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0]
    assert f"crm serve: API on http://127.0.0.1:{port}/ (docs: http://127.0.0.1:{port}/docs" in out
    assert "access log off" in out and "GET /docs" not in out and "HTTP/1.1" not in out


def test_bad_api_settings_fail_serve_in_one_line(crm: CRM, crm_url: str, tmp_path: Path) -> None:
    (tmp_path / "crm.toml").write_text("[api]\naccess_log = \"loud\"\n")
    crm_bin = str(Path(sys.executable).with_name("crm"))
    env = {k: v for k, v in os.environ.items() if k not in ("CRM_DATABASE_URL", "CRM_USER")}
    r = subprocess.run([crm_bin, "--database", crm_url, "serve", "--deliver-every", "0"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode in (1, 2) and "access_log" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_crm_serve_without_database_is_one_line(tmp_path: Path) -> None:
    crm_bin = str(Path(sys.executable).with_name("crm"))
    env = {k: v for k, v in os.environ.items() if k not in ("CRM_DATABASE_URL", "CRM_USER")}
    r = subprocess.run([crm_bin, "--database", f"sqlite:///{tmp_path}/missing.db", "serve"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 2 and "run `crm init` first" in r.stderr and "Traceback" not in r.stderr
