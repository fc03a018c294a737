"""Hooks the marketing plugin publishes for other plugins (registered through ``crm_add_hookspecs``).

Implement them with ``@crmcore.hookimpl(optionalhook=True)`` if your plugin must also work
without marketing enabled.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from crmcore import hookspec

if TYPE_CHECKING:
    from crm_marketing.models import Response
    from crmcore.uow import UnitOfWork


@hookspec
def marketing_channel_adapters(register: Callable[[str, Callable[[], Any]], None]) -> None:
    """Add delivery channel adapters for ``crm marketing campaign send --adapter NAME``.

    :param register: call ``register(name, factory)``; ``factory()`` returns an object with
        ``open()``, ``send(message)``, ``delivered(message) -> bool | None`` and ``close()``
        (see :class:`crm_marketing.delivery.ChannelAdapter`). Built-in names (file, smtp) win.
    """


@hookspec
def marketing_response_recorded(uow: UnitOfWork, response: Response) -> None:
    """A campaign response was recorded (in the same transaction).

    :param uow: the unit of work.
    :param response: the new response (``campaign_id``, ``customer_id``, ``type``, ``at``).
    """
