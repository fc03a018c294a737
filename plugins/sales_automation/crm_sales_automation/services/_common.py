"""Plumbing shared by the sales services: settings, users, amounts, the audit entry.

Split out so each entity module stays small; nothing here writes on its own."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import select

from crm_sales_automation.models import (
    Activity,
)
from crm_sales_automation.schemas import (
    PLUGIN_ID,
    SalesSettings,
)
from crmcore.db.types import utcnow
from crmcore.errors import InvalidInput, NotFound
from crmcore.models import Contact, User
from crmcore.uow import UnitOfWork

DEFAULT_PIPELINE = "default"
#: The default pipeline follows the selling process (name, label, default win probability %).
DEFAULT_STAGES: tuple[tuple[str, str, int], ...] = (
    ("prospecting", "prospecting", 10),
    ("qualification", "qualification", 20),
    ("approach", "approach", 30),
    ("presentation", "presentation / demo", 50),
    ("objection_handling", "objection handling", 60),
    ("closing", "closing", 80),
)
WON, LOST = "won", "lost"
INVOICE_PREFIX = "SALES-OPP-"


# =============================================================================================
# plumbing
# =============================================================================================

def settings_for(uow: UnitOfWork) -> SalesSettings:
    """The plugin's validated settings (crmcore's settings registry, or crm.toml when the plugin
    is used without it being registered, e.g. from a script)."""
    try:
        return cast(SalesSettings, uow.crm.settings(PLUGIN_ID))
    except (AttributeError, NotFound):
        from crmcore.sdk import load_plugin_settings

        return load_plugin_settings(PLUGIN_ID, SalesSettings, uow.crm.config)[0]


def today() -> dt.date:
    return utcnow().date()


def moment(as_of: dt.date | None) -> dt.datetime:
    """"Now" for a report: noon UTC of ``as_of`` (the demo's convention, ``crm sales demo
    --as-of``), so a report run as of a date reads the same on any day; the clock without one."""
    return utcnow() if as_of is None else dt.datetime.combine(as_of, dt.time(12), tzinfo=dt.UTC)


def _user_id(uow: UnitOfWork, username: str | None) -> int | None:
    """The id of ``username``; without one, the acting user when it is a user of this CRM."""
    if username is not None:
        return uow.users.id_for(username)
    return uow.session.scalar(select(User.id).where(User.username == uow.actor))


def _usernames(uow: UnitOfWork, ids: Iterable[int | None]) -> dict[int | None, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    names: dict[int | None, str] = {}
    for i, name in uow.session.execute(select(User.id, User.username).where(User.id.in_(wanted))):
        names[i] = name
    return names


def _check_amount(amount: Decimal, currency: str, name: str = "amount") -> None:
    """The core's per-currency check: no more decimals than the currency has (JPY 0, EUR 2, KWD 3)."""
    from crmcore.schemas.account import check_amount

    try:
        check_amount(amount, currency)
    except ValueError as e:
        raise InvalidInput(f"invalid input: {name}: {e}", [(name, str(e))]) from None


def _audit(uow: UnitOfWork, action: str, entity: str, key: object, before: dict[str, Any] | None = None,
           after: dict[str, Any] | None = None) -> None:
    uow.audit.record(action, f"sales.{entity}", key, before=before, after=after)

def _username(uow: UnitOfWork, user_id: int | None) -> str | None:
    return None if user_id is None else uow.session.scalar(select(User.username).where(User.id == user_id))


def activity_rows(uow: UnitOfWork, q: Any) -> list[dict[str, Any]]:
    acts = list(uow.session.scalars(q.order_by(Activity.due_at, Activity.id)))
    names = _usernames(uow, [a.owner_id for a in acts])
    people = {a.contact_id for a in acts if a.contact_id is not None}
    contacts = dict(uow.session.execute(select(Contact.id, Contact.name).where(Contact.id.in_(people))).all()) if people else {}
    now = utcnow()
    return [{"id": a.id, "kind": a.kind.value, "subject": a.subject, "due_at": a.due_at, "done_at": a.done_at,
             "overdue": a.done_at is None and a.due_at is not None and a.due_at < now,
             "lead_id": a.lead_id, "opportunity_id": a.opportunity_id, "customer_id": a.customer_id,
             "owner": names.get(a.owner_id), "outcome": a.outcome, "interaction_id": a.interaction_id,
             "contact_id": a.contact_id, "contact": contacts.get(a.contact_id)} for a in acts]
