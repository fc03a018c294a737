"""Fixtures of the marketing tests; crmcore's (crm_url, make_crm, cli, ...) come from crmcore.testing."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import crm_marketing.plugin as PLUGIN
import crm_value_analysis.plugin  # noqa: F401 - its tables on the metadata, for the value-field segment tests
import pytest
from crm_marketing.testing import Shop

from crmcore import CRM


@pytest.fixture
def mcrm(make_crm: Callable[..., CRM]) -> CRM:
    """A CRM with the marketing plugin registered in code (default settings)."""
    return make_crm(plugins=[PLUGIN])


@pytest.fixture
def shop(mcrm: CRM) -> Shop:
    return Shop(mcrm)


@pytest.fixture
def mcli(cli: Callable[..., Any]) -> Callable[..., Any]:
    """``crm`` in-process with the plugin registered."""
    def run(*args: str, **kw: Any) -> Any:
        return cli(*args, plugins=[PLUGIN], **kw)
    return run
