"""Staff users: add, change roles, deactivate. Every change needs ``user.manage`` and is audited.

The CRM never locks itself out: the first user must be an admin (until then the CRM runs in
single-user mode, where anyone may do anything), and the last active admin can neither be
deactivated nor lose the admin role. That check locks every active user row first (``SELECT ...
FOR NO KEY UPDATE`` in id order on PostgreSQL; SQLite's writing units of work already hold the
write lock), so two admins removing each other at the same instant are serialised: the second
one sees the first one's change and is refused. ``NO KEY``: rows that merely reference a user
(an owner) are not blocked by it, so an import assigning owners cannot deadlock with it.
"""
from __future__ import annotations

import builtins
from collections.abc import Iterable

from sqlalchemy import select

from crmcore.enums import Role
from crmcore.errors import Conflict, InvalidInput, NotFound
from crmcore.limits import text_problem
from crmcore.models import User
from crmcore.permissions import refuse_actor
from crmcore.schemas import UserCreate
from crmcore.services._base import Service


class UserService(Service):
    def add(self, data: UserCreate) -> User:
        self.uow.require("user.manage")
        if self.session.scalar(select(User.id).where(User.username == data.username)) is not None:
            raise Conflict(f"user {data.username!r} already exists")
        roles = self._known_roles(data.roles)
        if Role.ADMIN.value not in roles and self.session.scalar(select(User.id).limit(1)) is None:
            raise Conflict("the first user must have the admin role (--role admin), "
                           "or no one could manage users once single-user mode ends")
        user = User(username=data.username, display_name=data.display_name, email=data.email, roles=roles, active=True)
        self.session.add(user)
        self.session.flush()
        self.uow.audit.record("create", "user", user.id, after=data.model_dump())
        return user

    def get_by_username(self, username: str) -> User:
        if text_problem(username, 64):  # no such user can exist; the engines could not even be asked
            raise NotFound("user", repr(username[:64]))
        user = self.session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFound("user", repr(username))
        return user

    def id_for(self, username: str | None) -> int | None:
        return None if username is None else self.get_by_username(username).id

    def list(self, *, include_inactive: bool = True) -> list[User]:
        q = select(User).order_by(User.username)
        if not include_inactive:
            q = q.where(User.active.is_(True))
        return list(self.session.scalars(q))

    def _other_active_admins(self, user: User) -> int:
        """Active admins besides ``user``, counted on the rows :meth:`_lock_for_admin_check` locked."""
        return sum(1 for u in self.session.scalars(select(User).where(User.active.is_(True), User.id != user.id))
                   if Role.ADMIN.value in (u.roles or []))

    def _lock_for_admin_check(self, user: User) -> None:
        """Lock the active users (id order, so two checks never deadlock) and re-read them.

        Roles are a JSON list, which the engines query differently, so every active row is
        locked rather than the admins only: user changes are rare, and this keeps one code path.
        A row deactivated by a transaction that committed while we waited drops out (PostgreSQL
        re-checks the WHERE of a locked row) and ``populate_existing`` refreshes the roles; the
        target and the actor are re-read too, and the actor checked again: a right lost
        meanwhile no longer counts.
        """
        self.session.flush()
        self.session.scalars(select(User).where(User.active.is_(True)).order_by(User.id)
                             .with_for_update(key_share=True).execution_options(populate_existing=True)).all()
        self.session.refresh(user)
        actor = self.uow.user
        if actor is not None:
            self.session.refresh(actor)
            refuse_actor(self.uow.actor, actor)
            self.uow.require("user.manage")

    def _known_roles(self, roles: Iterable[Role | str]) -> builtins.list[str]:
        """The roles as names, each a core role or one declared by a loaded plugin."""
        known = self.uow.crm.permissions.roles
        wanted = list(dict.fromkeys(str(getattr(r, "value", r)) for r in roles))
        bad = [r for r in wanted if r not in known]
        if bad:
            raise InvalidInput(f"invalid role: {bad[0]!r} (roles: {', '.join(known)})", [("roles", bad[0])])
        return wanted

    def set_roles(self, username: str, roles: Iterable[Role | str]) -> User:
        """Replace the user's roles (at least one)."""
        self.uow.require("user.manage")
        wanted = self._known_roles(roles)
        if not wanted:
            raise InvalidInput("give at least one role", [("roles", "at least one role")])
        user = self.get_by_username(username)
        if Role.ADMIN.value not in wanted:
            self._lock_for_admin_check(user)  # taking the admin role away: decide on locked, fresh rows
        before = list(user.roles or [])
        if Role.ADMIN.value in before and Role.ADMIN.value not in wanted and user.active and not self._other_active_admins(user):
            raise Conflict(f"user {username} is the last active admin; make someone else admin first")
        if wanted == before:
            return user
        user.roles = wanted
        self.session.flush()
        self.uow.audit.record("roles", "user", user.id, before={"roles": before}, after={"roles": wanted})
        return user

    def set_active(self, username: str, active: bool) -> User:
        """Deactivate (or reactivate) a user; a deactivated user can no longer act."""
        self.uow.require("user.manage")
        user = self.get_by_username(username)
        if not active:
            self._lock_for_admin_check(user)  # decide on locked, fresh rows (see the module docstring)
        if user.active == active:
            return user
        if not active and Role.ADMIN.value in (user.roles or []) and not self._other_active_admins(user):
            raise Conflict(f"user {username} is the last active admin; make someone else admin first")
        user.active = active
        self.session.flush()
        self.uow.audit.record("activate" if active else "deactivate", "user", user.id,
                              before={"active": not active}, after={"active": active})
        return user
