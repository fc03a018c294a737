"""The hooks the publisher test plugin publishes."""
from __future__ import annotations

from typing import Any

from crmcore import hookspec


@hookspec
def publisher_before_deal(uow: Any, deal: str) -> None:
    """Guard: raise Veto to refuse the deal.

    :param uow: the unit of work.
    :param deal: the deal's name.
    """


@hookspec
def publisher_extra(uow: Any, customer_id: int) -> int | None:
    """An amount other plugins add for a customer.

    :param uow: the unit of work.
    :param customer_id: the customer.
    """
