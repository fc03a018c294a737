"""The unit of work: one session, one transaction, the services, and after-commit callbacks.

Services flush, never commit; the unit of work commits once at the end of the ``with`` block
or rolls everything back if anything (a service, a guard, a plugin's hook) raised. Callbacks
registered with :meth:`UnitOfWork.on_commit` run only after a successful commit.

The unit of work also answers who is acting: :attr:`UnitOfWork.user` and the permission checks
:meth:`UnitOfWork.require` / :meth:`UnitOfWork.can` (see :mod:`crmcore.permissions`), and which
customers it may see: :attr:`UnitOfWork.visibility` (see :mod:`crmcore.visibility`).
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from crmcore.limits import check_actor

if TYPE_CHECKING:
    from crmcore.app import CRM
    from crmcore.models import User
    from crmcore.plugins import HookRelay
    from crmcore.services.accounts import AccountService
    from crmcore.services.audit import AuditService
    from crmcore.services.contacts import ContactService
    from crmcore.services.customers import CustomerService
    from crmcore.services.interactions import InteractionService
    from crmcore.services.profile import ProfileService
    from crmcore.services.users import UserService
    from crmcore.visibility import Visibility

log = logging.getLogger(__name__)


class UnitOfWork:
    def __init__(self, crm: CRM, session: Session, actor: str) -> None:
        self.crm = crm
        self.session = session
        self.actor = check_actor(actor)  # fits the audit log, or one clear error before any work
        self.hooks: HookRelay = crm.hooks
        self._after_commit: list[Callable[[], None]] = []
        self.failed: BaseException | None = None  # set when a hook raised: the unit can only roll back
        self._actor_checked = False
        self._user: User | None = None

    # -- who is acting ------------------------------------------------------------------------
    @property
    def single_user(self) -> bool:
        """True while the database has no users: every permission is granted."""
        return self.user is None

    @property
    def user(self) -> User | None:
        """The acting user's row, or None in single-user mode (no users at all).

        Once any user exists the actor must be one of them and active, else
        :class:`crmcore.permissions.UnknownActor` (one line, exit 1).
        """
        if not self._actor_checked:
            from sqlalchemy import select

            from crmcore.models import User
            from crmcore.permissions import refuse_actor

            if self.session.scalar(select(User.id).limit(1)) is not None:
                user = self.session.scalar(select(User).where(User.username == self.actor))
                refuse_actor(self.actor, user)
                self._user = user
            self._actor_checked = True
        return self._user

    def can(self, permission: str) -> bool:
        """Whether the actor holds ``permission`` (always, in single-user mode)."""
        user = self.user
        return user is None or self.crm.permissions.allows(user.roles or (), permission)

    def require(self, permission: str) -> None:
        """Refuse (:class:`crmcore.PermissionDenied`, exit 1) unless the actor holds ``permission``.

        Call it before writing anything; the unit of work then rolls back as a whole.
        """
        if not self.can(permission):
            from crmcore.permissions import PermissionDenied

            raise PermissionDenied(self.actor, permission)

    def now(self) -> dt.datetime:
        """The current time (aware UTC) from the CRM's clock: ``crm.clock`` if set (tests freeze it), else now."""
        clock = getattr(self.crm, "clock", None)
        return clock() if clock is not None else dt.datetime.now(dt.UTC)

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
            except Exception as e:
                log.exception("after-commit callback %r failed", cb)
                errors.append(e)
        return errors

    def discard_after_commit(self) -> None:
        self._after_commit.clear()

    @cached_property
    def visibility(self) -> Visibility:
        """The actor's customer scope ("own" customers only, or all): every read applies it."""
        from crmcore.visibility import Visibility

        return Visibility(self)

    @cached_property
    def customers(self) -> CustomerService:
        from crmcore.services.customers import CustomerService

        return CustomerService(self)

    @cached_property
    def contacts(self) -> ContactService:
        from crmcore.services.contacts import ContactService

        return ContactService(self)

    @cached_property
    def interactions(self) -> InteractionService:
        from crmcore.services.interactions import InteractionService

        return InteractionService(self)

    @cached_property
    def accounts(self) -> AccountService:
        from crmcore.services.accounts import AccountService

        return AccountService(self)

    @cached_property
    def profiles(self) -> ProfileService:
        from crmcore.services.profile import ProfileService

        return ProfileService(self)

    @cached_property
    def users(self) -> UserService:
        from crmcore.services.users import UserService

        return UserService(self)

    @cached_property
    def audit(self) -> AuditService:
        from crmcore.services.audit import AuditService

        return AuditService(self)
