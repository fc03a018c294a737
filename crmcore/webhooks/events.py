"""Events into the outbox, from the hooks, in the transaction of the change.

Registered by the CRM itself (not a plugin an admin could disable: disabling would silently lose
events). An event is written only when an active subscription asks for its type, so a CRM with no
webhooks pays one cached look-up per unit of work and nothing more.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select

from crmcore.db.types import utcnow
from crmcore.hookspecs import hookimpl
from crmcore.models import OutboxEvent, WebhookDelivery, WebhookSubscription
from crmcore.services._base import jsonable

EVENT_TYPES = (
    "customer.created", "customer.updated", "customer.archived", "customer.merged",
    "interaction.logged", "interaction.updated", "transaction.posted",
    "customers.imported", "interactions.imported", "transactions.imported",
    "sales.opportunity.won", "credit.hold.changed", "credit.downgraded", "marketing.response.recorded",
)
_CACHE_KEY = "crm.webhook_subscriptions"


def _subscribers(uow: Any, event_type: str) -> list[int]:
    cache = uow.session.info.get(_CACHE_KEY)
    if cache is None:
        cache = [(s.id, set(s.events)) for s in uow.session.scalars(
            select(WebhookSubscription).where(WebhookSubscription.active.is_(True)))]
        uow.session.info[_CACHE_KEY] = cache
    return [sid for sid, events in cache if "*" in events or event_type in events]


def emit(uow: Any, event_type: str, customer_id: int | None, payload: dict[str, Any]) -> None:
    """Write the event and its deliveries, if anyone subscribed to it."""
    subs = _subscribers(uow, event_type)
    if not subs:
        return
    now = utcnow()
    event_id = uow.session.execute(insert(OutboxEvent).values(
        event_type=event_type, customer_id=customer_id, created_at=now,
        payload=jsonable({"type": event_type, "customer_id": customer_id, "actor": uow.actor, "at": now, "data": payload}),
    ).returning(OutboxEvent.id)).scalar_one()
    uow.session.execute(insert(WebhookDelivery), [
        {"subscription_id": sid, "event_id": event_id, "customer_id": customer_id, "status": "pending",
         "attempts": 0, "next_attempt_at": now} for sid in subs])


def forget_subscriptions(session: Any) -> None:
    session.info.pop(_CACHE_KEY, None)


def _customer(c: Any) -> dict[str, Any]:
    return {"id": c.id, "external_ref": c.external_ref, "name": c.name, "version": c.version}


@hookimpl
def crm_customer_created(uow: Any, customer: Any) -> None:
    emit(uow, "customer.created", customer.id, _customer(customer))


@hookimpl
def crm_customer_updated(uow: Any, customer: Any, changes: dict[str, tuple[Any, Any]]) -> None:
    emit(uow, "customer.updated", customer.id, {**_customer(customer), "changes": {k: list(v) for k, v in changes.items()}})


@hookimpl
def crm_customer_archived(uow: Any, customer: Any) -> None:
    emit(uow, "customer.archived", customer.id, _customer(customer))


@hookimpl
def crm_merge_customers(uow: Any, source_id: int, target_id: int) -> None:
    emit(uow, "customer.merged", target_id, {"source_id": source_id, "target_id": target_id})


@hookimpl
def crm_interaction_logged(uow: Any, interaction: Any) -> None:
    emit(uow, "interaction.logged", interaction.customer_id, {
        "id": interaction.id, "channel": interaction.channel, "direction": interaction.direction,
        "kind": interaction.kind, "subject": interaction.subject, "occurred_at": interaction.occurred_at})


@hookimpl
def crm_interaction_updated(uow: Any, interaction: Any, changes: dict[str, tuple[Any, Any]]) -> None:
    emit(uow, "interaction.updated", interaction.customer_id,
         {"id": interaction.id, "changes": {k: list(v) for k, v in changes.items()}})


@hookimpl
def crm_transaction_posted(uow: Any, transaction: Any) -> None:
    emit(uow, "transaction.posted", getattr(transaction, "customer_id", None), {
        "id": transaction.id, "account_id": transaction.account_id, "kind": transaction.kind,
        "amount": transaction.amount, "currency": transaction.currency, "reference": transaction.reference})


@hookimpl
def crm_customers_batch(uow: Any, created_ids: Sequence[int], updated_ids: Sequence[int]) -> None:
    emit(uow, "customers.imported", None, {"created_ids": list(created_ids), "updated_ids": list(updated_ids)})


@hookimpl
def crm_interactions_batch(uow: Any, interaction_ids: Sequence[int]) -> None:
    emit(uow, "interactions.imported", None, {"interaction_ids": list(interaction_ids)})


@hookimpl
def crm_transactions_batch(uow: Any, transaction_ids: Sequence[int]) -> None:
    emit(uow, "transactions.imported", None, {"transaction_ids": list(transaction_ids)})


# -- events the repository's plugins publish (optional: those plugins may not be loaded) --------

@hookimpl(optionalhook=True)
def sales_opportunity_won(uow: Any, opportunity: Any) -> None:
    emit(uow, "sales.opportunity.won", opportunity.customer_id, {
        "id": opportunity.id, "title": opportunity.title, "amount": opportunity.amount, "currency": opportunity.currency})


@hookimpl(optionalhook=True)
def credit_hold_changed(uow: Any, customer_id: int, on_hold: bool, reason: str) -> None:
    emit(uow, "credit.hold.changed", customer_id, {"on_hold": on_hold, "reason": reason})


@hookimpl(optionalhook=True)
def credit_downgraded(uow: Any, customer_id: int, old_grade: str, new_grade: str, score: int) -> None:
    emit(uow, "credit.downgraded", customer_id, {"old_grade": old_grade, "new_grade": new_grade, "score": score})


@hookimpl(optionalhook=True)
def marketing_response_recorded(uow: Any, response: Any) -> None:
    emit(uow, "marketing.response.recorded", response.customer_id, {
        "campaign_id": response.campaign_id, "type": response.type, "at": response.at})
