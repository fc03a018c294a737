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


@hookspec
def credit_downgraded(uow: Any, customer_id: int, old_grade: str, new_grade: str, score: int) -> None:
    """A scoring run lowered the customer's grade by one grade or more (in the same transaction).

    :param uow: the unit of work of the scoring run.
    :param customer_id: the customer.
    :param old_grade: the grade of the previous run.
    :param new_grade: the new, worse grade.
    :param score: the new score.
    """
