"""Webhook subscriptions: the rules every face goes through (an admin's act; targets checked)."""
from __future__ import annotations

import secrets as _secrets
from collections.abc import Iterable
from typing import Any

from crmcore.errors import InvalidInput, NotFound
from crmcore.models import WebhookSubscription
from crmcore.webhooks.events import EVENT_TYPES, forget_subscriptions
from crmcore.webhooks.targets import check_url, policy


def add(uow: Any, url: str, events: Iterable[str], secret: str | None = None) -> tuple[WebhookSubscription, str]:
    """Subscribe ``url`` to ``events``; returns the row and the secret (a new random one if none given).

    The URL must be a public http(s) target or one named in ``[webhooks] allow_hosts``
    (:mod:`crmcore.webhooks.targets`); a refused URL writes nothing.
    """
    uow.require("user.manage")
    chosen = sorted(set(events))
    if not chosen:
        raise InvalidInput("invalid input: events: name at least one event type, or '*'")
    unknown = sorted(set(chosen) - set(EVENT_TYPES) - {"*"})
    if unknown:
        raise InvalidInput(f"invalid input: unknown event type(s) {', '.join(unknown)[:200]} (known: {', '.join(EVENT_TYPES)})")
    if secret is not None and not (16 <= len(secret) <= 128 and secret.isascii() and secret.isprintable()):
        raise InvalidInput("invalid input: secret: 16 to 128 printable ASCII characters")
    check_url(url, policy(uow.crm.config))
    secret = secret or _secrets.token_urlsafe(24)
    sub = WebhookSubscription(url=url, events=chosen, secret=secret, active=True, created_by=uow.actor)
    uow.session.add(sub)
    uow.session.flush()
    forget_subscriptions(uow.session)
    uow.audit.record("create", "webhook_subscription", sub.id, after={"url": url, "events": chosen})
    return sub, secret


def remove(uow: Any, subscription_id: int) -> WebhookSubscription:
    """Stop a subscription (its undelivered events are no longer sent)."""
    uow.require("user.manage")
    sub = uow.session.get(WebhookSubscription, subscription_id)
    if sub is None:
        raise NotFound("subscription", subscription_id)
    sub.active = False
    forget_subscriptions(uow.session)
    uow.audit.record("deactivate", "webhook_subscription", sub.id, after={"active": False})
    return sub
