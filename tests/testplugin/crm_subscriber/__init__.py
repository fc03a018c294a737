"""Test plugin that implements the publisher's hooks without requiring it (optional hooks)."""
from __future__ import annotations

from typing import Any

from crmcore import Veto, hookimpl

CALLS: list[str] = []


@hookimpl(optionalhook=True)
def publisher_before_deal(uow: Any, deal: str) -> None:
    CALLS.append(deal)
    if deal == "forbidden":
        raise Veto(f"deal {deal} is on hold")


@hookimpl(optionalhook=True)
def publisher_extra(customer_id: int) -> int:
    return customer_id * 10
