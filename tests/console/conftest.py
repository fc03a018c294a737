"""Fixtures of the console tests: a CRM with users and passwords, and a signed-in TestClient."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from crmcore.api import create_app
from crmcore.console import with_console
from crmcore.console.auth import set_password
from crmcore.schemas import CustomerCreate, UserCreate

PASSWORD = "correct horse battery"
#: cheap argon2id for tests (the defaults cost about a second per hash on a busy CI machine)
FAST_HASH = {"argon2_time_cost": 1, "argon2_memory_kib": 8192, "argon2_parallelism": 1}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = CSRF.search(html)
    assert m, "no CSRF field on the page"
    return m.group(1)


@pytest.fixture
def console_crm(make_crm: Callable[..., Any]) -> Any:
    """A CRM with boss (admin), anna and sam (sales, "own" visibility) and carl (credit controller)."""
    crm = make_crm(config={"visibility": {"sales": "own"}, "console": {"lockout_after": 3, "lockout_seconds": 60, **FAST_HASH}})
    with crm.unit_of_work("boss") as uow:
        uow.users.add(UserCreate(username="boss", display_name="Bea Boss", roles=["admin"]))
    with crm.unit_of_work("boss") as uow:
        for name, display, role in (("anna", "Anna Berg", "sales"), ("sam", "Sam Stone", "sales"),
                                    ("carl", "Carl Credit", "credit_controller")):
            uow.users.add(UserCreate(username=name, display_name=display, roles=[role]))
        for name in ("boss", "anna", "sam", "carl"):
            set_password(uow, name, PASSWORD)
        uow.customers.create(CustomerCreate(name="Alpine Kitchens GmbH", external_ref="ALP", country="DE", owner="anna",
                                            tags=["trade"]))
        uow.customers.create(CustomerCreate(name="Сибирские окна", external_ref="SIB", country="RU", owner="sam"))
    return crm


@pytest.fixture
def client(console_crm: Any) -> Iterator[Callable[..., TestClient]]:
    """``client(user)``: a TestClient signed in as ``user`` (None: not signed in)."""
    opened: list[TestClient] = []

    def make(user: str | None = "boss", **headers: str) -> TestClient:
        c = TestClient(with_console(create_app(console_crm), console_crm), headers=headers)
        opened.append(c)
        if user is not None:
            sign_in(c, user)
        return c

    yield make
    for c in opened:
        c.close()


def sign_in(c: TestClient, user: str, password: str = PASSWORD) -> Any:
    page = c.get("/console/signin")
    r = c.post("/console/signin", data={"csrf": csrf_of(page.text), "username": user, "password": password, "next": ""},
               follow_redirects=False)
    return r


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright, one per test module (the browser tests)."""
    from playwright.sync_api import expect, sync_playwright

    from tests.console.browser import CHROMIUM, EXPECT_TIMEOUT_MS

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


from tests.console.plugkit import pclient, pcrm  # noqa: E402, F401 - the plugin pages' fixtures (plugkit.py)
