"""Hooks this plugin publishes for other plugins (credit, marketing, integrators).

Registered with the core through ``crm_add_hookspecs``; implement them with
``@hookimpl(optionalhook=True)`` so your plugin also loads when sales_automation is not
installed. Documented in the plugin's README ("Published hooks").
"""
from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from crmcore import hookspec

if TYPE_CHECKING:
    from crmcore.uow import UnitOfWork


@hookspec
def sales_before_opportunity_won(uow: UnitOfWork, opportunity: Any) -> None:
    """Guard: raise :class:`crmcore.Veto` to refuse winning this deal; nothing is written.

    :param uow: the unit of work of the win.
    :param opportunity: the open deal (``.id``, ``.customer_id``, ``.amount`` (Decimal),
        ``.currency``, ``.title``, ``.owner`` (username or None)).
    """


@hookspec
def sales_opportunity_won(uow: UnitOfWork, opportunity: Any) -> None:
    """A deal was won (its status, stage and stage history are written).

    :param uow: the unit of work of the win.
    :param opportunity: the won deal (the ``Opportunity`` row).
    """


@hookspec
def sales_opportunity_lost(uow: UnitOfWork, opportunity: Any, reason: str) -> None:
    """A deal was lost.

    :param uow: the unit of work.
    :param opportunity: the lost deal (the ``Opportunity`` row).
    :param reason: why it was lost, as the user gave it.
    """


@hookspec
def sales_opportunity_reopened(uow: UnitOfWork, opportunity: Any, reason: str) -> None:
    """A lost deal was reopened (back in an open stage; winning it later runs every win guard again).

    :param uow: the unit of work of the reopening.
    :param opportunity: the reopened deal (the ``Opportunity`` row, status ``open``).
    :param reason: why it was reopened, as the user gave it.
    """


@hookspec
def sales_opportunity_stage_changed(uow: UnitOfWork, opportunity: Any, from_stage: str, to_stage: str) -> None:
    """A deal moved from one stage to another (also called on win and loss).

    :param uow: the unit of work.
    :param opportunity: the deal after the move.
    :param from_stage: name of the stage it left.
    :param to_stage: name of the stage it entered.
    """


@hookspec
def sales_lead_converted(uow: UnitOfWork, lead: Any, customer_id: int, opportunity_id: int | None) -> None:
    """A lead was converted into (or matched to) a customer.

    :param uow: the unit of work.
    :param lead: the converted lead (the ``Lead`` row).
    :param customer_id: the customer it became or was matched to.
    :param opportunity_id: the deal created with it, or None.
    """


@hookspec
def sales_uninvoiced_won(uow: UnitOfWork, customer_id: int, currency: str) -> Decimal | None:
    """Won but not yet invoiced total of a customer in a currency (credit adds it to exposure).

    :param uow: the unit of work.
    :param customer_id: the customer.
    :param currency: ISO 4217 code.
    :return: the total (Decimal), or None.
    """
