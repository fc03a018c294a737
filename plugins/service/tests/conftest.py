"""Fixtures of the service tests: the plugin registered in code, a frozen clock, a customer builder.

crmcore's fixtures (crm_url, make_crm, cli, ...) come from crmcore.testing.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import crm_service.plugin as PLUGIN
import pytest
from crm_service.testing import FrozenClock

from crmcore import CRM
from crmcore.schemas import CustomerCreate, UserCreate

BERLIN_CAL = {"timezone": "Europe/Berlin", "holidays": "DE", "extra_days_off": ["2030-12-24"],
              "hours": dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), "09:00-18:00")}


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(dt.datetime(2030, 6, 3, 8, 0, tzinfo=dt.UTC))  # Monday 10:00 in Berlin


@pytest.fixture
def config() -> dict[str, Any]:
    return {"service": {"calendars": {"default": BERLIN_CAL}}}


@pytest.fixture
def scrm(make_crm: Callable[..., CRM], clock: FrozenClock, config: dict[str, Any]) -> CRM:
    crm = make_crm(plugins=[PLUGIN], config=config)
    crm.clock = clock  # type: ignore[attr-defined]
    return crm


@pytest.fixture
def customer(scrm: CRM) -> Callable[..., int]:
    def make(ref: str = "C1", email: str | None = None) -> int:
        with scrm.unit_of_work("test") as uow:
            return uow.customers.create(CustomerCreate(name=f"Customer {ref}", external_ref=ref, email=email)).id
    return make


@pytest.fixture
def users(scrm: CRM) -> Callable[..., None]:
    def add(**roles: list[str]) -> None:
        with scrm.unit_of_work("test") as uow:
            if uow.single_user:
                uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
        with scrm.unit_of_work("root") as uow:
            for name, r in roles.items():
                uow.users.add(UserCreate(username=name, display_name=name.title(), roles=r))
    return add


@pytest.fixture
def scli(cli: Callable[..., Any], scrm: CRM, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch,
         config: dict[str, Any]) -> Callable[..., Any]:
    """The CLI with the plugin, the test's config (as crm.toml) and the frozen clock."""
    from crmcore.app import CRM as _CRM

    original = _CRM.__init__

    def init(self: Any, *a: Any, **kw: Any) -> None:
        original(self, *a, **kw)
        self.clock = clock

    monkeypatch.setattr(_CRM, "__init__", init)
    monkeypatch.setattr("crmcore.app.read_config", lambda *a, **k: config)

    def run(*args: str, **kw: Any) -> Any:
        return cli(*args, plugins=[PLUGIN], **kw)
    return run
