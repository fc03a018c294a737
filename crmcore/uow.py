"""The unit of work: one session, one transaction, the services, and after-commit callbacks.

Services flush, never commit; the unit of work commits once at the end of the ``with`` block
or rolls everything back if anything (a service, a guard, a plugin's hook) raised. Callbacks
registered with :meth:`UnitOfWork.on_commit` run only after a successful commit.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from crmcore.app import CRM
    from crmcore.plugins import HookRelay
    from crmcore.services.accounts import AccountService
    from crmcore.services.audit import AuditService
    from crmcore.services.contacts import ContactService
    from crmcore.services.customers import CustomerService
    from crmcore.services.interactions import InteractionService
    from crmcore.services.users import UserService

log = logging.getLogger(__name__)


class UnitOfWork:
    def __init__(self, crm: "CRM", session: Session, actor: str) -> None:
        self.crm = crm
        self.session = session
        self.actor = actor
        self.hooks: HookRelay = crm.hooks
        self._after_commit: list[Callable[[], None]] = []
        self.failed: BaseException | None = None  # set when a hook raised: the unit can only roll back

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after the transaction commits; dropped if it rolls back."""
        self._after_commit.append(callback)

    def run_after_commit(self) -> list[BaseException]:
        """Run the callbacks; a failing one is logged and does not stop the others."""
        errors: list[BaseException] = []
        callbacks, self._after_commit = self._after_commit, []
        for cb in callbacks:
            try:
                cb()
            except Exception as e:  # noqa: BLE001 - the data is committed; report, don't undo
                log.exception("after-commit callback %r failed", cb)
                errors.append(e)
        return errors

    def discard_after_commit(self) -> None:
        self._after_commit.clear()

    @cached_property
    def customers(self) -> "CustomerService":
        from crmcore.services.customers import CustomerService

        return CustomerService(self)

    @cached_property
    def contacts(self) -> "ContactService":
        from crmcore.services.contacts import ContactService

        return ContactService(self)

    @cached_property
    def interactions(self) -> "InteractionService":
        from crmcore.services.interactions import InteractionService

        return InteractionService(self)

    @cached_property
    def accounts(self) -> "AccountService":
        from crmcore.services.accounts import AccountService

        return AccountService(self)

    @cached_property
    def users(self) -> "UserService":
        from crmcore.services.users import UserService

        return UserService(self)

    @cached_property
    def audit(self) -> "AuditService":
        from crmcore.services.audit import AuditService

        return AuditService(self)
