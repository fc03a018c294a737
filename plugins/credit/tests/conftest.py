"""Fixtures of the credit tests; crmcore's (crm_url, make_crm, cli, ...) come from crmcore.testing."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import crm_credit.plugin as PLUGIN
import pytest
from crm_credit.testing import Book

from crmcore import CRM


@pytest.fixture
def ccrm(make_crm: Callable[..., CRM]) -> CRM:
    return make_crm(plugins=[PLUGIN])


@pytest.fixture
def make_ccrm(make_crm: Callable[..., CRM]) -> Callable[..., CRM]:
    def f(**config: Any) -> CRM:
        return make_crm(plugins=[PLUGIN], config={"credit": config})
    return f


@pytest.fixture
def book(ccrm: CRM) -> Book:
    return Book(ccrm)


@pytest.fixture
def ccli(cli: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: str, **kw: Any) -> Any:
        return cli(*args, plugins=[PLUGIN], **kw)
    return run
