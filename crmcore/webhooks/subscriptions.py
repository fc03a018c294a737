"""Webhook subscriptions: the rules every face goes through (an admin's act; targets checked)."""
from __future__ import annotations

import secrets as _secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from crmcore.errors import InvalidInput, NotFound
from crmcore.models import WebhookSubscription
from crmcore.webhooks.events import EVENT_TYPES, forget_subscriptions
from crmcore.webhooks.targets import check_url, policy

if TYPE_CHECKING:
    from crmcore.uow import UnitOfWork


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


def webhooks_overview(uow: UnitOfWork) -> dict[str, list[dict[str, Any]]]:
    """What ``crm webhooks list --json`` shows: the subscriptions with their delivery counts and the
    20 latest dead letters (an administrator's read: ``user.manage``)."""
    from sqlalchemy import func, select

    from crmcore.models import OutboxEvent, WebhookDelivery, WebhookSubscription

    uow.require("user.manage")
    counts: dict[int, dict[str, int]] = {}
    for sid, status, n in uow.session.execute(select(WebhookDelivery.subscription_id, WebhookDelivery.status, func.count())
                                              .group_by(WebhookDelivery.subscription_id, WebhookDelivery.status)):
        counts.setdefault(sid, {})[status] = n
    subs = [{"id": s.id, "url": s.url, "events": s.events, "active": s.active,
             **{k: counts.get(s.id, {}).get(k, 0) for k in ("pending", "delivered", "dead")}}
            for s in uow.session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id))]
    dead = [{"delivery": d.id, "subscription": d.subscription_id, "event": etype, "attempts": d.attempts,
             "last_error": d.last_error} for d, etype in uow.session.execute(
                select(WebhookDelivery, OutboxEvent.event_type).join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
                .where(WebhookDelivery.status == "dead").order_by(WebhookDelivery.id.desc()).limit(20))]
    return {"subscriptions": subs, "dead_letters": dead}
