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


@hookspec(firstresult=True)
def marketing_send_message(uow: UnitOfWork, customer_id: int, channel: str, subject: str, body: str, key: str,
                           adapter: str) -> dict[str, Any] | None:
    """Send one message outside a campaign (a survey, a notice) through a channel adapter, consent checked.

    Marketing answers when it is enabled: the customer's consent for ``channel`` is checked now
    (an opt-out, or no opt-in on a ``consent_required`` channel, suppresses it), and the message
    is handed to the adapter only after the caller's transaction commits.

    :param uow: the caller's unit of work.
    :param customer_id: the addressee (its e-mail or phone is the address).
    :param channel: ``email`` or ``sms``.
    :param subject: one line; ``body``: the text.
    :param key: what the message is for, unique per message (``service-csat-t12``): its file name
        and Message-ID, so a second send of the same key replaces, never duplicates, the file.
    :param adapter: a channel adapter name (``file``, ``smtp`` or one registered by a plugin).
    :return: ``{"status": "queued" | "suppressed", "reason": str | None}``.
    """
