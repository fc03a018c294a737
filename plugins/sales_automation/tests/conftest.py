"""Fixtures of the sales_automation tests; crmcore's (crm_url, make_crm, cli, ...) come from crmcore.testing."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import crm_sales_automation.plugin as PLUGIN
import pytest
from crm_sales_automation.testing import Sales

from crmcore import CRM


@pytest.fixture
def scrm(make_crm: Callable[..., CRM]) -> CRM:
    """A CRM with the sales_automation plugin registered in code (default settings)."""
    return make_crm(plugins=[PLUGIN])


@pytest.fixture
def sales(scrm: CRM) -> Sales:
    return Sales(scrm)


@pytest.fixture
def scli(cli: Callable[..., Any]) -> Callable[..., Any]:
    """``crm`` in-process with the plugin registered."""
    def run(*args: str, **kw: Any) -> Any:
        return cli(*args, plugins=[PLUGIN], **kw)
    return run

