"""Fixtures of the value_analysis tests; crmcore's (crm_url, make_crm, cli, ...) come from crmcore.testing."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import crm_value_analysis.plugin as PLUGIN
import pytest
from crm_value_analysis.testing import Base

from crmcore import CRM


@pytest.fixture
def vcrm(make_crm: Callable[..., CRM]) -> CRM:
    """A CRM with the value_analysis plugin registered in code (default settings)."""
    return make_crm(plugins=[PLUGIN])


@pytest.fixture
def base(vcrm: CRM) -> Base:
    return Base(vcrm)


@pytest.fixture
def vcli(cli: Callable[..., Any]) -> Callable[..., Any]:
    """``crm`` in-process with the plugin registered."""
    def run(*args: str, **kw: Any) -> Any:
        return cli(*args, plugins=[PLUGIN], **kw)
    return run
