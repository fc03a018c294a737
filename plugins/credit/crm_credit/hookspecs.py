"""Hooks the credit plugin publishes for other plugins (registered through ``crm_add_hookspecs``)."""
from __future__ import annotations

from typing import Any

from crmcore import hookspec


@hookspec
def credit_hold_changed(uow: Any, customer_id: int, on_hold: bool, reason: str) -> None:
    """A customer was put on credit hold or released (in the same transaction).

    :param uow: the unit of work of the change.
    :param customer_id: the customer.
    :param on_hold: True when the hold starts, False when it is lifted (release, or dunning resolved).
    :param reason: the recorded reason.
    """
