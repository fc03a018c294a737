"""Which customers the acting user may see: one rule for every face (CLI, Python API, HTTP API,
web console) and every plugin report.

Configured once in ``crm.toml``::

    [visibility]
    sales = "own"        # a role -> "all" | "own"; roles not named see "all"

The older ``[api] visibility`` table is still read (``[visibility]`` wins key by key). Admins
always see everything, and so does single-user mode (no users yet). A user sees everything as
soon as one of their roles says "all" (the first "all" wins).

A query over customers, or over rows owned through a customer, adds
``uow.visibility.customer_clause(...)``; a single customer goes through
``uow.visibility.check(customer)``, which answers "not found" for an invisible customer exactly
as for a missing one, so ids cannot be probed.
"""
from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, false, true

from crmcore.errors import ConfigError, NotFound

if TYPE_CHECKING:
    from crmcore.models import Customer
    from crmcore.uow import UnitOfWork

MODES = ("all", "own")


def visibility_modes(config: Mapping[str, Any] | None) -> dict[str, str]:
    """role -> mode from crm.toml: ``[api] visibility`` merged under ``[visibility]``.

    A value that is not "all" or "own" is one :class:`ConfigError` line naming the key.
    """
    config = config or {}
    api = section if isinstance(section := config.get("api"), Mapping) else {}
    merged: dict[str, Any] = {}
    for where, table in (("[api] visibility", api.get("visibility")), ("[visibility]", config.get("visibility"))):
        if table is None:
            continue
        if not isinstance(table, Mapping):
            raise ConfigError(f"crm.toml {where} must be a table of role = \"all\" | \"own\"")
        for role, mode in table.items():
            if mode not in MODES:
                raise ConfigError(f"crm.toml {where}: {role} = {mode!r}; use \"all\" or \"own\"")
            merged[str(role)] = mode
    return merged


def _modes_of(crm: Any) -> dict[str, str]:
    """Parsed once per CRM (the config does not change while it is open)."""
    modes = getattr(crm, "_visibility_modes", None)
    if modes is None:
        modes = visibility_modes(getattr(crm, "config", None) if isinstance(getattr(crm, "config", None), Mapping) else {})
        with suppress(AttributeError):  # a CRM stand-in without attributes: parse each time
            crm._visibility_modes = modes
    return modes


class Visibility:
    """The acting user's customer scope, as the unit of work knows it (``uow.visibility``)."""

    def __init__(self, uow: UnitOfWork, modes: Mapping[str, str] | None = None) -> None:
        self.uow = uow
        self._modes = dict(modes) if modes is not None else _modes_of(uow.crm)

    @cached_property
    def user_id(self) -> int | None:
        """The acting user's id (None in single-user mode)."""
        user = self.uow.user
        return None if user is None else user.id

    @cached_property
    def own_only(self) -> bool:
        """True when the acting user sees only the customers they own."""
        if "own" not in self._modes.values():  # no role is limited: nobody is (no user lookup needed)
            return False
        user = self.uow.user
        if user is None:
            return False
        roles = list(user.roles or [])
        if "admin" in roles:
            return False
        modes = [self._modes.get(r, "all") for r in roles] or ["all"]
        return "all" not in modes

    def customer_clause(self, owner_column: Any = None) -> ColumnElement[bool]:
        """A WHERE clause limiting a query to visible customers (``true()`` when all are visible).

        ``owner_column`` is the column holding the customer's owner in the caller's query:
        ``Customer.owner_id`` by default, or a plugin's own (``Opportunity.owner_id``, a joined
        ``Customer.owner_id``...). Unowned customers are not visible to an "own" user.
        """
        if not self.own_only:
            return true()
        if owner_column is None:
            from crmcore.models import Customer

            owner_column = Customer.owner_id
        if self.user_id is None:  # cannot happen with own_only, kept for type safety
            return false()
        return owner_column == self.user_id

    def visible_ids(self) -> Any:
        """A scalar subquery of the visible customers' ids, for ``X.customer_id.in_(...)``
        on tables that reference customers (``None`` when every customer is visible)."""
        if not self.own_only:
            return None
        from sqlalchemy import select

        from crmcore.models import Customer

        return select(Customer.id).where(self.customer_clause(Customer.owner_id))

    def customer_filter(self, customer_id_column: Any) -> ColumnElement[bool]:
        """A WHERE clause for rows that belong to a customer through ``customer_id_column``."""
        ids = self.visible_ids()
        return true() if ids is None else customer_id_column.in_(ids)

    def can_see(self, customer: Customer) -> bool:
        return not self.own_only or (customer.owner_id is not None and customer.owner_id == self.user_id)

    def check(self, customer: Customer, key: object = None) -> Customer:
        """The customer, or :class:`NotFound` when the user may not see it (the same answer as a
        customer that does not exist)."""
        if not self.can_see(customer):
            raise NotFound("customer", customer.id if key is None else key)
        return customer
