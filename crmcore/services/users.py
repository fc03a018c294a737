from __future__ import annotations

from sqlalchemy import select

from crmcore.errors import Conflict, NotFound
from crmcore.models import User
from crmcore.schemas import UserCreate
from crmcore.services._base import Service


class UserService(Service):
    def add(self, data: UserCreate) -> User:
        if self.session.scalar(select(User.id).where(User.username == data.username)) is not None:
            raise Conflict(f"user {data.username!r} already exists")
        user = User(username=data.username, display_name=data.display_name, email=data.email,
                    roles=[r.value for r in data.roles])
        self.session.add(user)
        self.session.flush()
        self.uow.audit.record("create", "user", user.id, after=data.model_dump())
        return user

    def get_by_username(self, username: str) -> User:
        user = self.session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFound("user", repr(username))
        return user

    def id_for(self, username: str | None) -> int | None:
        return None if username is None else self.get_by_username(username).id

    def list(self) -> list[User]:
        return list(self.session.scalars(select(User).order_by(User.username)))
