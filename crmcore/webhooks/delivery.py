"""Send the outbox: signed POSTs, retries with exponential back-off, order per customer, dead letters.

Order: deliveries of one subscription and one customer go out in event order; when one fails,
the later ones of that customer wait for it (a receiver never sees "updated" before "created").
A delivery that failed ``max_attempts`` times is ``dead`` and no longer holds the others back.

Targets: each delivery checks the URL again, resolves its host and connects to the checked
address (:mod:`crmcore.webhooks.targets`); a refused target is a failed attempt, retried and
dead-lettered like any other, with the reason in ``last_error``.

Signature: ``X-CRM-Signature: sha256=<hex HMAC-SHA256 of the raw body with the subscription's
secret>``; receivers recompute it and compare in constant time (``hmac.compare_digest``).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
from sqlalchemy import CursorResult, exists, literal, select, update
from sqlalchemy.orm import aliased

from crmcore.app import CRM
from crmcore.db.types import utcnow
from crmcore.errors import InvalidInput
from crmcore.models import OutboxEvent, WebhookDelivery, WebhookSubscription
from crmcore.webhooks.targets import Policy, Resolver, Target, pin, policy

BACKOFF_BASE = dt.timedelta(seconds=30)
BACKOFF_MAX = dt.timedelta(hours=6)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def backoff(attempts: int) -> dt.timedelta:
    """30 s, 1 min, 2 min, 4 min ... capped at 6 hours."""
    return min(BACKOFF_BASE * (2 ** max(0, attempts - 1)), BACKOFF_MAX)


@dataclass
class DeliveryRun:
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    waiting: int = 0  # held back behind an earlier event of the same customer
    errors: list[str] = field(default_factory=list)


Post = Callable[[Target, bytes, dict[str, str]], int]


def http_post(client: httpx.Client) -> Post:
    """POST to the target's checked address; the URL's host goes in ``Host`` and in TLS SNI
    (so the certificate is verified for the name, and no second DNS look-up can redirect it)."""

    def post(target: Target, body: bytes, headers: dict[str, str]) -> int:
        url = httpx.URL(target.url)
        extensions = {"sni_hostname": url.host.encode("idna").decode("ascii")} if url.scheme == "https" else {}
        return client.post(url.copy_with(host=target.address), content=body, extensions=extensions,
                           headers={**headers, "Host": url.netloc.decode("ascii")}).status_code

    return post


def _send(allow: Policy, resolve: Resolver | None, post: Post, url: str, body: bytes, headers: dict[str, str]) -> str | None:
    """Send one delivery; the error, or None when the receiver answered 2xx."""
    try:
        status = post(pin(url, allow, resolve), body, headers)
        return None if 200 <= status < 300 else f"HTTP {status}"
    except InvalidInput as e:
        return f"refused target: {e}"[:500]
    except (httpx.HTTPError, OSError, UnicodeError) as e:
        return f"{type(e).__name__}: {e}"[:500]


LEASE = dt.timedelta(minutes=5)  # a claimed delivery is retried after this if its runner died


def deliver(crm: CRM, *, max_attempts: int = 8, timeout: float = 10.0, limit: int = 1000,
            now: dt.datetime | None = None, post: Post | None = None, resolve: Resolver | None = None) -> DeliveryRun:
    """One pass over the due deliveries (committing each outcome as it goes).

    Several runners may run at once (the server's background task and a cron job): each claims a
    delivery before sending it (moving its ``next_attempt_at`` a lease ahead, on the condition that
    nobody moved it first), so an event is posted once per pass whoever runs it.
    """
    now = now or utcnow()
    run = DeliveryRun()
    allow = policy(crm.config)
    if post is None:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            return deliver(crm, max_attempts=max_attempts, timeout=timeout, limit=limit, now=now,
                           post=http_post(client), resolve=resolve)
    waiting = aliased(WebhookDelivery)
    earlier_not_due = exists(select(literal(1)).select_from(waiting).where(  # keeps each customer's events in order
        waiting.subscription_id == WebhookDelivery.subscription_id, waiting.customer_id == WebhookDelivery.customer_id,
        waiting.status == "pending", waiting.event_id < WebhookDelivery.event_id, waiting.next_attempt_at > now))
    with crm.unit_of_work("webhooks", read_only=True) as uow:
        rows = uow.session.execute(
            select(WebhookDelivery.id, WebhookDelivery.subscription_id, WebhookDelivery.customer_id,
                   WebhookDelivery.next_attempt_at, WebhookDelivery.attempts, OutboxEvent.event_type, OutboxEvent.payload,
                   WebhookSubscription.url, WebhookSubscription.secret)
            .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
            .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now,
                   WebhookSubscription.active.is_(True), ~earlier_not_due)
            .order_by(WebhookDelivery.event_id).limit(limit)).all()
    blocked: set[tuple[int, int]] = set()
    for did, sid, cust, due, attempts, etype, payload, url, secret in rows:
        lane = (sid, cust) if cust is not None else (sid, -did)  # events without a customer: no ordering lane
        if lane in blocked:
            run.waiting += 1
            continue
        with crm.unit_of_work("webhooks") as uow:  # claim it
            claim = uow.session.execute(update(WebhookDelivery).where(
                WebhookDelivery.id == did, WebhookDelivery.status == "pending", WebhookDelivery.attempts == attempts,
                WebhookDelivery.next_attempt_at == due).values(next_attempt_at=now + LEASE))
            claimed = cast(CursorResult[Any], claim).rowcount  # DML: a cursor result
        if claimed != 1:
            blocked.add(lane)  # another runner has it; the later events of this customer wait for it
            run.waiting += 1
            continue
        body = json.dumps({"id": did, **payload}, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "X-CRM-Event": etype, "X-CRM-Delivery": str(did),
                   "X-CRM-Signature": sign(secret, body), "User-Agent": "crmcore-webhooks"}
        error = _send(allow, resolve, post, url, body, headers)
        with crm.unit_of_work("webhooks") as uow:
            d = uow.session.get(WebhookDelivery, did)
            assert d is not None
            d.attempts = attempts + 1
            if error is None:
                d.status, d.delivered_at, d.last_error = "delivered", utcnow(), None
                run.delivered += 1
                continue
            d.last_error = error
            if d.attempts >= max_attempts:
                d.status = "dead"
                run.dead += 1
            else:
                d.next_attempt_at = now + backoff(d.attempts)
                run.failed += 1
                blocked.add(lane)
            run.errors.append(f"delivery {did} ({etype}) to {url}: {error}")
    return run
