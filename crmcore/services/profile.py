"""The customer 360° view, as data every face shows (``crm customer show``, ``GET /customers/{id}``,
the web console, an embedding program).

One place, so the faces cannot drift apart: the customer (through
:meth:`~crmcore.services.customers.CustomerService.visible`, i.e. ``customer.read`` and visibility),
its contacts, its latest interactions, the timeline (interactions and ledger entries merged by
date with every plugin's ``crm_customer_timeline`` entries), its accounts with their balances, and the plugins'
``crm_customer_profile_sections``. The core's part costs a fixed number of queries whatever the
customer's history (one per table, each bounded); each plugin's hooks add their own.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import or_, select

from crmcore.enums import Channel, TransactionKind
from crmcore.errors import InvalidInput
from crmcore.models import Account, Contact, Customer, Interaction, Transaction
from crmcore.schemas import AccountRead, ContactRead, CustomerRead, InteractionRead
from crmcore.services._base import Service, jsonable
from crmcore.vocabularies import of as vocabularies_of

#: the most interactions (and timeline entries) one profile shows
MAX_PROFILE_INTERACTIONS = 1000
CORE_SOURCE = "core"
LEDGER_SOURCE = "ledger"


def as_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _entry_matches(kinds: set[str] | None, source: str, kind: str) -> bool:
    """A timeline entry is kept when ``kinds`` names its source or its kind (or a word of it)."""
    return kinds is None or source in kinds or kind in kinds or any(w in kinds for w in kind.split())


class ProfileService(Service):
    """``uow.profiles``: the 360° view of one customer."""

    def get(self, customer_key: int | str, *, interactions: int = 10, kinds: Iterable[str] | None = None) -> dict[str, Any]:
        """The 360° view of the customer (an id, an external reference, or ``#id``) as JSON-able data.

        :param interactions: how many of the latest interactions (and timeline entries) to show, 0 to 1000.
        :param kinds: keep only timeline entries whose source ("core" or a plugin id), kind, or
            a word of the kind (an interaction's channel or kind: "email", "complaint") is named.
        :raises NotFound: the customer is missing or the actor may not see it (the same answer).
        """
        if isinstance(interactions, bool) or not isinstance(interactions, int) or not 0 <= interactions <= MAX_PROFILE_INTERACTIONS:
            raise InvalidInput(f"interactions must be 0 to {MAX_PROFILE_INTERACTIONS}, got {interactions!r}")
        wanted = None if kinds is None else {str(k) for k in kinds}
        c = self.uow.customers.visible(customer_key)
        latest = self._interactions(c.id, interactions, wanted)
        sections = [s for _, s in self.uow.hooks.profile_sections(self.uow, c)]
        contacts = self.session.scalars(select(Contact).where(Contact.customer_id == c.id).order_by(Contact.id))
        accounts = self.session.scalars(select(Account).where(Account.customer_id == c.id).order_by(Account.id))
        return jsonable({
            "customer": CustomerRead.model_validate(c).model_dump(),
            "contacts": [ContactRead.model_validate(x).model_dump() for x in contacts],
            "interactions": latest,
            "timeline": self.timeline(c, latest, interactions, wanted),
            "accounts": [AccountRead.model_validate(x).model_dump() for x in accounts],
            "sections": {s.title: s.fields for s in sections},
            "section_tables": {s.title: [{"title": t.title, "columns": t.columns, "rows": t.rows} for t in s.tables]
                               for s in sections if s.tables},
        })

    def _interactions(self, customer_id: int, limit: int, kinds: set[str] | None) -> list[dict[str, Any]]:
        """The latest ``limit`` interactions of the customer (of the wanted kinds), newest first."""
        if not limit or (kinds is not None and CORE_SOURCE not in kinds and not self._core_filter(kinds)):
            return []
        q = select(Interaction).where(Interaction.customer_id == customer_id)
        if kinds is not None and CORE_SOURCE not in kinds:
            q = q.where(or_(*self._core_filter(kinds)))
        q = q.order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(limit)
        # the contact person spoken with, by id (the profile's contacts name them)
        return [InteractionRead.model_validate(x).model_dump()
                for x in self.session.scalars(q)]

    def _core_filter(self, kinds: set[str]) -> list[Any]:
        channels = [c for c in Channel if c.value in kinds]
        kinds_ = [k for k in vocabularies_of(self.uow.crm).allowed("interaction_kinds") if k in kinds]
        return ([Interaction.channel.in_(channels)] if channels else []) + ([Interaction.kind.in_(kinds_)] if kinds_ else [])

    def _ledger(self, customer_id: int, limit: int, kinds: set[str] | None) -> list[dict[str, Any]]:
        """The latest ``limit`` ledger entries (invoices, payments, credit notes...) of the customer,
        as timeline entries of source "ledger": every touchpoint on the 360° view. One query."""
        if not limit:
            return []
        q = select(Transaction.occurred_at, Transaction.kind, Transaction.amount, Transaction.currency,
                   Transaction.reference, Transaction.description).where(Transaction.customer_id == customer_id)
        if kinds is not None and LEDGER_SOURCE not in kinds:
            wanted = [k for k in TransactionKind if k.value in kinds]
            if not wanted:
                return []
            q = q.where(Transaction.kind.in_(wanted))
        q = q.order_by(Transaction.occurred_at.desc(), Transaction.id.desc()).limit(limit)
        # amount, currency, entry_kind and description as data too: a face formats the money for
        # its reader and names the kind in the reader's language (the summary is the CLI's line)
        return [{"at": as_utc(at), "kind": kind.value.replace("_", " "),
                 "summary": f"{kind.value.replace('_', ' ')} {amount} {currency}" + (f" · {text}" if text else ""),
                 "reference": ref, "source": LEDGER_SOURCE, "entry_kind": kind.value, "amount": amount,
                 "currency": currency, "description": text}
                for at, kind, amount, currency, ref, text in self.session.execute(q)]

    def timeline(self, c: Customer, interactions: list[dict[str, Any]], limit: int,
                 kinds: set[str] | None = None) -> list[dict[str, Any]]:
        """The customer's interactions, ledger entries and the plugins' timeline entries, merged by
        date, newest first."""
        entries = [{"at": as_utc(x["occurred_at"]), "kind": f"{x['channel']} {x['kind']}", "summary": x["subject"],
                    "reference": x["external_ref"], "source": CORE_SOURCE, "contact_id": x.get("contact_id")}
                   for x in interactions]
        entries += self._ledger(c.id, limit, kinds)
        entries += [{"at": e.at, "kind": e.kind, "summary": e.summary, "reference": e.reference, "source": plugin}
                    for plugin, e in self.uow.hooks.customer_timeline(self.uow, c)
                    if _entry_matches(kinds, plugin, e.kind)]
        entries.sort(key=lambda e: e["at"], reverse=True)
        return entries[:limit]
