"""API tokens as a service of the unit of work: create, list, revoke (the CLI, the API and the
console call it; authentication itself lives in :mod:`crmcore.api.auth`).

Tokens are 256 random bits, so a fast hash is the right tool (a slow password hash such as
bcrypt protects low-entropy secrets; it would only slow every request down here): the
database never holds a usable token, and lookup is one indexed equality on the hash.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import select

from crmcore.db.types import utcnow
from crmcore.errors import InvalidInput, NotFound
from crmcore.models import ApiToken, User
from crmcore.services._base import Service

PREFIX = "crm_"

__all__ = ["PREFIX", "TokenService", "hash_token"]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenService(Service):
    def create(self, username: str, name: str, expires_days: int | None = None) -> tuple[ApiToken, str]:
        """A new token for ``username``; returns the row and the token (shown once, never stored)."""
        user = self.uow.users.get_by_username(username)
        if not (self.uow.user is not None and self.uow.user.id == user.id):
            self.uow.require("user.manage")  # a token for someone else is an admin's act
        name = name.strip()
        if not 1 <= len(name) <= 100:
            raise InvalidInput("invalid token name: 1 to 100 characters", [("name", "length")])
        if expires_days is not None and not 1 <= expires_days <= 3650:
            raise InvalidInput("invalid input: expires_days: from 1 to 3650", [("expires_days", "range")])
        token = PREFIX + secrets.token_urlsafe(32)
        row = ApiToken(user_id=user.id, name=name, token_hash=hash_token(token), prefix=token[:10],
                       expires_at=utcnow() + dt.timedelta(days=expires_days) if expires_days else None)
        self.session.add(row)
        self.session.flush()
        self.uow.audit.record("create", "api_token", row.id, after={"user": username, "name": name,
                                                                    "expires_at": row.expires_at})
        return row, token

    def list(self, username: str | None = None) -> list[tuple[ApiToken, str]]:
        q = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)
        if username is not None:
            q = q.where(User.username == username)
        return [(t, u) for t, u in self.session.execute(q)]

    def revoke(self, token_id: int) -> ApiToken:
        row = self.session.get(ApiToken, token_id)
        if row is None:
            raise NotFound("token", token_id)
        if not (self.uow.user is not None and self.uow.user.id == row.user_id):
            self.uow.require("user.manage")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            self.session.flush()
            self.uow.audit.record("revoke", "api_token", row.id, after={"revoked_at": row.revoked_at})
        return row
