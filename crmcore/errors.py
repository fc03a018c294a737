"""Typed errors. The CLI turns each into one line and an exit code, never a traceback."""
from __future__ import annotations

from pydantic import ValidationError


class CRMError(Exception):
    """Base of every error a user can cause. ``exit_code`` is what the CLI returns."""

    exit_code = 1


class ConfigError(CRMError):
    exit_code = 2


class DatabaseError(CRMError):
    """The database is missing, unreachable or not initialised."""

    exit_code = 2


class NotFound(CRMError):
    def __init__(self, entity: str, key: object) -> None:
        super().__init__(f"{entity} {key} not found")
        self.entity = entity
        self.key = key


class InvalidInput(CRMError):
    """Input failed validation; ``errors`` holds (field, reason) pairs."""

    def __init__(self, message: str, errors: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class Conflict(CRMError):
    """The change clashes with the stored state (duplicate key, closed account, ...)."""


class StaleVersion(Conflict):
    def __init__(self, entity: str, key: object, expected: int, actual: int) -> None:
        super().__init__(
            f"{entity} {key} was changed by someone else (you have version {expected}, "
            f"the database has {actual}); reload and try again"
        )


class Vetoed(CRMError):
    """A guard hook refused the change. Nothing of the change is written."""

    def __init__(self, plugin: str, hook: str, reason: str) -> None:
        super().__init__(f"refused by plugin {plugin!r} ({hook}): {reason}")
        self.plugin = plugin
        self.hook = hook
        self.reason = reason


class PluginError(CRMError):
    """A plugin's hook raised; the whole unit of work was rolled back."""

    def __init__(self, plugin: str, hook: str, error: BaseException) -> None:
        super().__init__(f"plugin {plugin!r} failed in hook {hook}: {type(error).__name__}: {error}")
        self.plugin = plugin
        self.hook = hook
        self.error = error


class Veto(Exception):
    """Raised by a plugin inside a guard hook to refuse a change, with a reason for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def validation_errors(e: ValidationError, default: str = "input") -> list[tuple[str, str]]:
    """pydantic's errors as (dotted field, reason) pairs, without pydantic's "Value error, " noise."""
    return [(".".join(str(p) for p in err["loc"]) or default, err["msg"].removeprefix("Value error, ")) for err in e.errors()]


def invalid_input(e: ValidationError, default: str = "input") -> InvalidInput:
    """One readable InvalidInput for a pydantic ValidationError (fields named, reasons kept)."""
    errors = validation_errors(e, default)
    text = "; ".join(m if f == default else f"{f}: {m}" for f, m in errors)
    return InvalidInput(f"invalid {default}: {text}", errors)
