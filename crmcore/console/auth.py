"""Console sign-in: argon2id passwords, lockout with back-off, and revocable sessions.

Why here and not in a service: nothing else signs people in with a password. The CLI's
``crm user password`` and ``crm user sessions revoke`` call these functions inside a unit of
work, so the permission checks (``user.manage`` for someone else's password) and the audit
log are the same as for every other change to a user.

Sessions: the cookie holds 256 random bits; the database keeps only their SHA-256 (a fast hash
is right for high-entropy tokens, as for API tokens). A session ends at ``expires_at`` (absolute),
after ``idle_minutes`` without a request, or when revoked.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crmcore.db.types import as_utc, utcnow
from crmcore.errors import InvalidInput, validation_errors
from crmcore.models.user import ConsoleSession, User
from crmcore.uow import UnitOfWork

MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 takes anything; a megabyte "password" is a denial of service


class ConsoleSettings(BaseModel):
    """``[console]`` in crm.toml."""

    model_config = ConfigDict(extra="forbid")

    session_hours: float = Field(12, gt=0, le=24 * 90)
    idle_minutes: float = Field(120, gt=0, le=60 * 24 * 30)
    lockout_after: int = Field(5, ge=1, le=100)  # failures in a row before the first lock
    lockout_seconds: float = Field(60, ge=0, le=86400)  # the first lock; each further failure doubles it
    lockout_max_seconds: float = Field(3600, ge=0, le=7 * 86400)
    secure_cookies: str = Field("auto", pattern="^(auto|always)$")  # auto: Secure when the request is https
    # argon2id cost of NEW hashes (a stored hash carries its own): the library's RFC 9106 defaults
    argon2_time_cost: int = Field(3, ge=1, le=20)
    argon2_memory_kib: int = Field(65536, ge=8192, le=4 * 1024 * 1024)
    argon2_parallelism: int = Field(4, ge=1, le=16)

    @classmethod
    def of(cls, crm: Any) -> ConsoleSettings:
        """The ``[console]`` table of the CRM's configuration, validated."""
        config = crm.config.get("console", {}) if isinstance(getattr(crm, "config", None), dict) else {}
        try:
            return cls.model_validate(config)
        except ValidationError as e:
            from crmcore.errors import ConfigError

            raise ConfigError("crm.toml [console]: " + "; ".join(f"{k}: {m}" for k, m in validation_errors(e))) from None


@lru_cache(maxsize=4)
def _hasher_for(time_cost: int, memory_kib: int, parallelism: int) -> tuple[PasswordHasher, str]:
    h = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
    # verifying against a dummy when the user does not exist keeps the answer's timing the same
    return h, h.hash("not a password of anyone")


def hasher(settings: ConsoleSettings) -> tuple[PasswordHasher, str]:
    return _hasher_for(settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)


def check_password_text(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"invalid input: password: at least {MIN_PASSWORD} characters", [("password", "too short")])
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"invalid input: password: at most {MAX_PASSWORD} characters", [("password", "too long")])
    if "\x00" in password:
        raise InvalidInput("invalid input: password: must not contain NUL", [("password", "NUL")])


def set_password(uow: UnitOfWork, username: str, password: str) -> User:
    """Set (or replace) a user's console password; ends the user's sessions. Audited, never logged."""
    user = uow.users.get_by_username(username)
    if not (uow.user is not None and uow.user.id == user.id):
        uow.require("user.manage")  # someone else's password is an admin's act
    check_password_text(password)
    had = user.password_hash is not None
    user.password_hash = hasher(ConsoleSettings.of(uow.crm))[0].hash(password)
    user.failed_logins, user.locked_until = 0, None
    uow.session.flush()
    revoked = revoke_sessions(uow, username, audit=False)
    uow.audit.record("password", "user", user.id, before={"password": "set" if had else None},
                     after={"password": "set", "sessions_revoked": revoked})
    return user


def revoke_sessions(uow: UnitOfWork, username: str, *, audit: bool = True) -> int:
    """End every open console session of ``username``; returns how many were open."""
    user = uow.users.get_by_username(username)
    if not (uow.user is not None and uow.user.id == user.id):
        uow.require("user.manage")
    now = utcnow()
    result: Any = uow.session.execute(update(ConsoleSession).where(ConsoleSession.user_id == user.id,
                                                                   ConsoleSession.revoked_at.is_(None),
                                                                   ConsoleSession.expires_at > now)
                                      .values(revoked_at=now))
    n = int(result.rowcount)  # an UPDATE's CursorResult (Result's stubs do not show rowcount)
    if audit:
        uow.audit.record("revoke_sessions", "user", user.id, after={"sessions_revoked": n})
    return n


@dataclass
class SignInResult:
    user: User | None
    error: str | None = None  # a message id for the page (translated there)
    retry_after: int = 0  # seconds, when locked


def _lock_seconds(settings: ConsoleSettings, failures: int) -> float:
    over = failures - settings.lockout_after
    if over < 0:
        return 0
    return min(settings.lockout_seconds * (2 ** min(over, 30)), settings.lockout_max_seconds)


def verify_password(uow: UnitOfWork, username: str, password: str, settings: ConsoleSettings) -> SignInResult:
    """Check a password, counting failures and locking the account with back-off. Audited.

    The unit of work must commit even when the answer is "no": the failure counter and the
    lock are the point. An unknown user and a wrong password get the same answer.
    """
    user = uow.session.scalar(select(User).where(User.username == username)) if 0 < len(username) <= 64 else None
    now = utcnow()
    h, dummy = hasher(settings)
    if user is None or user.password_hash is None or not user.active:
        _check(h, dummy, password)
        return SignInResult(None, "bad_credentials")
    if user.locked_until is not None and as_utc(user.locked_until) > now:
        uow.audit.record("signin_locked", "user", user.id, after={"locked_until": user.locked_until})
        return SignInResult(None, "locked", int((as_utc(user.locked_until) - now).total_seconds()) + 1)
    if not _check(h, user.password_hash, password):
        user.failed_logins = (user.failed_logins or 0) + 1
        seconds = _lock_seconds(settings, user.failed_logins)
        after: dict[str, object] = {"failed_logins": user.failed_logins}
        if seconds:
            user.locked_until = now + dt.timedelta(seconds=seconds)
            after["locked_until"] = user.locked_until
        uow.audit.record("signin_failed", "user", user.id, after=after)
        if seconds:
            return SignInResult(None, "locked", int(seconds))
        return SignInResult(None, "bad_credentials")
    if h.check_needs_rehash(user.password_hash):  # the admin raised the cost: upgrade on sign-in
        user.password_hash = h.hash(password)
    user.failed_logins, user.locked_until = 0, None
    return SignInResult(user)


def _check(h: PasswordHasher, hashed: str, password: str) -> bool:
    try:
        return h.verify(hashed, password[:MAX_PASSWORD])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# -- sessions ------------------------------------------------------------------------------

def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_for(token: str) -> str:
    """The session's CSRF token: derived from the session token, so nothing more is stored."""
    return hmac.new(token.encode("utf-8"), b"crm-console-csrf", hashlib.sha256).hexdigest()


def start_session(uow: UnitOfWork, user: User, settings: ConsoleSettings, user_agent: str | None) -> str:
    """Open a session for ``user`` (already authenticated); returns the cookie's token."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    uow.session.add(ConsoleSession(token_hash=hash_token(token), user_id=user.id, created_at=now, last_seen_at=now,
                                   expires_at=now + dt.timedelta(hours=settings.session_hours),
                                   user_agent=(user_agent or "")[:200] or None))
    uow.session.flush()
    uow.audit.record("signin", "user", user.id, after={"via": "console"})
    return token


@dataclass
class SignedIn:
    """Who the request's session belongs to (read outside the request's unit of work)."""

    session_id: int
    user_id: int
    username: str
    display_name: str
    language: str | None
    csrf: str
    stale: bool = False  # last_seen_at is due a refresh (touch_session)


def lookup_session(db: Session, token: str | None, settings: ConsoleSettings) -> SignedIn | None:
    """The live session of ``token`` and its active user, or None. Only reads (a page view must not
    take SQLite's write lock); :func:`needs_touch` says when ``last_seen_at`` is due a refresh."""
    if not token or len(token) > 100:
        return None
    row = db.execute(select(ConsoleSession, User).join(User, User.id == ConsoleSession.user_id)
                     .where(ConsoleSession.token_hash == hash_token(token))).first()
    if row is None:
        return None
    s, user = row
    now = utcnow()
    if (s.revoked_at is not None or as_utc(s.expires_at) <= now or not user.active
            or as_utc(s.last_seen_at) + dt.timedelta(minutes=settings.idle_minutes) <= now):
        return None
    signed = SignedIn(s.id, user.id, user.username, user.display_name, user.language, csrf_for(token))
    signed.stale = (now - as_utc(s.last_seen_at)).total_seconds() > 60
    return signed


def touch_session(db: Session, session_id: int) -> None:
    """Refresh ``last_seen_at`` (at most once a minute per session, so a page view is rarely a write)."""
    db.execute(update(ConsoleSession).where(ConsoleSession.id == session_id).values(last_seen_at=utcnow()))
    db.commit()


def end_session(db: Session, token: str | None) -> None:
    if token and len(token) <= 100:
        db.execute(update(ConsoleSession).where(ConsoleSession.token_hash == hash_token(token),
                                                ConsoleSession.revoked_at.is_(None)).values(revoked_at=utcnow()))
        db.commit()
