"""Several `crm` processes at once: allowed writes all land, refused ones write nothing, and a
user added twice at the same moment exists once."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

CRM = str(Path(sys.executable).with_name("crm"))


def start(url: str, user: str, *args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    return subprocess.Popen([CRM, "--database", url, "--user", user, *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(url: str, user: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    p = start(url, user, *args, cwd=cwd)
    out, err = p.communicate(timeout=60)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def test_concurrent_allowed_refused_and_duplicate_writes(crm: Any, crm_url: str, tmp_path: Path) -> None:
    with crm.unit_of_work("boss") as uow:
        from crmcore.schemas import UserCreate

        uow.users.add(UserCreate(username="boss", display_name="Boss", roles=["admin"]))
        uow.users.add(UserCreate(username="max", display_name="Max", roles=["manager"]))
        uow.users.add(UserCreate(username="vic", display_name="Vic", roles=["viewer"]))
    procs = [
        ("max", start(crm_url, "max", "customer", "add", "From max 1", cwd=tmp_path)),
        ("max", start(crm_url, "max", "customer", "add", "From max 2", cwd=tmp_path)),
        ("vic", start(crm_url, "vic", "customer", "add", "From vic 1", cwd=tmp_path)),
        ("vic", start(crm_url, "vic", "customer", "add", "From vic 2", cwd=tmp_path)),
        ("dup", start(crm_url, "boss", "user", "add", "anna", "--name", "Anna", "--role", "sales", cwd=tmp_path)),
        ("dup", start(crm_url, "boss", "user", "add", "anna", "--name", "Anna", "--role", "sales", cwd=tmp_path)),
    ]
    results = [(who, p.wait(timeout=120), p.stderr.read() if p.stderr else "") for who, p in procs]
    for who, code, err in results:
        if who == "max":
            assert code == 0, err
        elif who == "vic":
            assert code == 1 and err.strip() == "error: user vic lacks customer.write"
    dup = sorted(code for who, code, _ in results if who == "dup")
    assert dup == [0, 1], results
    dup_err = next(err for who, code, err in results if who == "dup" and code == 1).strip()
    assert len(dup_err.splitlines()) == 1 and ("already exists" in dup_err or "conflicts with stored data" in dup_err)

    listed = json.loads(run(crm_url, "vic", "customer", "list", "--json", cwd=tmp_path).stdout)
    assert sorted(c["name"] for c in listed) == ["From max 1", "From max 2"]
    users = json.loads(run(crm_url, "boss", "user", "list", "--json", cwd=tmp_path).stdout)
    assert [u["username"] for u in users].count("anna") == 1
    audit = json.loads(run(crm_url, "boss", "audit", "--json", "--entity", "customer", cwd=tmp_path).stdout)
    assert sorted(a["actor"] for a in audit) == ["max", "max"]
