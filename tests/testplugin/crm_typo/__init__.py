"""Test plugin with a misspelt hook name: it does not fit the contract."""
from __future__ import annotations

from typing import Any

from crmcore import hookimpl


@hookimpl
def crm_customer_creatd(uow: Any, customer: Any) -> None:
    raise AssertionError("never called")
