"""Webhooks through a durable outbox.

:mod:`crmcore.webhooks.events` implements the core's event hooks (and, as optional hooks, the
events the repository's plugins publish): each event a subscription asks for is written to
``outbox_events`` with one ``webhook_deliveries`` row per subscriber, in the transaction of the
change, so a rolled-back change sends nothing and a committed one is never lost.
:mod:`crmcore.webhooks.delivery` sends them (``crm webhooks deliver`` or the server's background
task): signed with HMAC-SHA256, retried with exponential back-off, in order per customer, and
marked dead after ``max_attempts`` failures (visible in ``crm webhooks list``).
"""
from __future__ import annotations

from crmcore.webhooks.events import EVENT_TYPES

__all__ = ["EVENT_TYPES"]
