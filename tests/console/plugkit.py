"""Fixtures of the plugin-page tests: a CRM with every shipped plugin registered in code, staff
users with passwords, and a TestClient signed in as one of them (C1's ``sign_in`` and CSRF helper)."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import crm_credit.plugin as CREDIT
import crm_marketing.plugin as MARKETING
import crm_sales_automation.plugin as SALES
import crm_service.plugin as SERVICE
import crm_value_analysis.plugin as VALUE
import pytest
from starlette.testclient import TestClient

from crmcore.api import create_app
from crmcore.console import with_console
from crmcore.console.auth import set_password
from crmcore.schemas import CustomerCreate, UserCreate
from tests.console.conftest import FAST_HASH, PASSWORD, csrf_of, sign_in

PLUGINS = [SALES, CREDIT, MARKETING, VALUE, SERVICE]
#: username -> (display name, role)
STAFF = {"anna": ("Anna Berg", "sales"), "sam": ("Sam Stone", "sales"), "carl": ("Carl Credit", "credit_controller"),
         "mia": ("Mia Manager", "manager"), "mark": ("Mark Eting", "marketing"), "vic": ("Vic Viewer", "viewer"),
         "suzy": ("Suzy Support", "support_agent")}


@pytest.fixture
def pcrm(make_crm: Callable[..., Any]) -> Any:
    """boss (admin) and STAFF; customers ALP (anna's, EUR) and SIB (sam's); sales see their own."""
    crm = make_crm(plugins=PLUGINS, config={"visibility": {"sales": "own"}, "console": dict(FAST_HASH),
                                            "credit": {"check_point": "both"}})
    with crm.unit_of_work("boss") as uow:
        uow.users.add(UserCreate(username="boss", display_name="Bea Boss", roles=["admin"]))
    with crm.unit_of_work("boss") as uow:
        for name, (display, role) in STAFF.items():
            uow.users.add(UserCreate(username=name, display_name=display, roles=[role]))
        for name in ("boss", *STAFF):
            set_password(uow, name, PASSWORD)
        uow.customers.create(CustomerCreate(name="Alpine Kitchens GmbH", external_ref="ALP", country="DE", owner="anna"))
        uow.customers.create(CustomerCreate(name="Сибирские окна", external_ref="SIB", country="RU", owner="sam"))
    return crm


@pytest.fixture
def pclient(pcrm: Any) -> Iterator[Callable[..., TestClient]]:
    """``pclient(user)``: a TestClient signed in as ``user``."""
    opened: list[TestClient] = []

    def make(user: str = "boss") -> TestClient:
        c = TestClient(with_console(create_app(pcrm), pcrm))
        opened.append(c)
        assert sign_in(c, user).status_code == 303
        return c

    yield make
    for c in opened:
        c.close()


def ids(crm: Any) -> dict[str, int]:
    from crmcore.schemas import CustomerQuery

    with crm.unit_of_work("boss", read_only=True) as uow:
        return {c.external_ref: c.id for c in uow.customers.search(CustomerQuery()).items}


def post(c: TestClient, path: str, page: str, **data: Any) -> Any:
    """Submit a form as the browser would: with the CSRF token of the page it was on."""
    token = csrf_of(c.get(page).text)
    return c.post(path, data={"csrf": token, **data}, follow_redirects=False)


def audit_actions(crm: Any, entity: str) -> list[tuple[str, str, str | None]]:
    with crm.unit_of_work("boss", read_only=True) as uow:
        return [(e.actor, e.action, e.entity_id) for e in uow.audit.list(entity)]


TEXT = re.compile(r"<[^>]+>")


def text_of(html: str) -> str:
    """The page's text without tags (for assertions about what a person reads)."""
    return " ".join(TEXT.sub(" ", html).split())
