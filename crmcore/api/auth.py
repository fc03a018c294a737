"""API tokens: created per user, shown once, stored as a SHA-256 hash, optionally expiring.

This module authenticates requests; creating, listing and revoking tokens is
:class:`crmcore.services.tokens.TokenService` (re-exported here for older imports).

Tokens are 256 random bits, so a fast hash is the right tool (a slow password hash such as
bcrypt protects low-entropy secrets; it would only slow every request down here): the
database never holds a usable token, and lookup is one indexed equality on the hash.
"""
from __future__ import annotations

import hmac

from sqlalchemy import select

from crmcore.db.types import utcnow
from crmcore.errors import CRMError
from crmcore.models import ApiToken, User
from crmcore.services.tokens import PREFIX, TokenService, hash_token  # re-exported: older imports keep working

__all__ = ["PREFIX", "TokenService", "Unauthenticated", "authenticate", "check_header", "hash_token"]


class Unauthenticated(CRMError):
    """No token, or one that is unknown, expired or revoked (HTTP 401)."""


def check_header(header: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, else :class:`Unauthenticated`
    (checked without the database, so a request without a token costs no query)."""
    if not header:
        raise Unauthenticated("authentication required: send Authorization: Bearer <token> (crm user token create)")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("authentication required: the Authorization header must be 'Bearer <token>'")
    if len(token) > 200 or not token.isascii() or not token.isprintable():
        raise Unauthenticated("invalid token")
    return token


def authenticate(session: object, header: str | None) -> User:
    """The active user behind ``Authorization: Bearer <token>``, else :class:`Unauthenticated`."""
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    digest = hash_token(check_header(header))
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        raise Unauthenticated("invalid token")
    now = utcnow()
    if row.revoked_at is not None:
        raise Unauthenticated("the token was revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthenticated("the token has expired")
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        raise Unauthenticated("the token's user is deactivated")
    return user
