"""The CLI's per-invocation state: global options, the lazily opened CRM, error reporting."""
from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from crmcore.errors import CRMError

if TYPE_CHECKING:
    from crmcore.app import CRM


class _LazySAExc:
    """``sqlalchemy.exc``, imported only when an error is being reported: `crm --help` and
    `crm --version` must not pay for SQLAlchemy (the except clauses below look it up lazily)."""

    def __getattr__(self, name: str) -> Any:
        from sqlalchemy import exc

        return getattr(exc, name)


sa_exc = _LazySAExc()


def safe(text: str) -> str:
    """:func:`crmcore.cli.output.safe`, imported when an error is reported (it pulls in SQLAlchemy)."""
    from crmcore.cli.output import safe as escape

    return escape(text)


@dataclass
class AppContext:
    database: str | None = None
    actor: str = "cli"
    plugins: tuple[Any, ...] = ()  # plugins registered in code (tests, embedding)
    _crm: CRM | None = field(default=None, repr=False)
    _actor_ok: bool = field(default=False, repr=False)

    def crm(self, *, create: bool = False) -> CRM:
        if self._crm is None or create:
            if self._crm is not None:
                self._crm.close()
            from crmcore.app import CRM

            self._crm = CRM.open(self.database, plugins=self.plugins, create=create)
            for line in self._crm.plugin_warnings():  # an enabled plugin that cannot load: say so, every command
                click.echo(f"warning: {line}", err=True)
        if not self._actor_ok and not create:
            # once users exist, every command acts as an existing, active user (one line, exit 1)
            from crmcore.permissions import check_actor

            check_actor(self._crm, self.actor)
            self._actor_ok = True
        return self._crm

    def close(self) -> None:
        if self._crm is not None:
            self._crm.close()
            self._crm = None


def default_actor() -> str:
    try:
        return os.environ.get("CRM_USER") or getpass.getuser()
    except Exception:  # noqa: BLE001 - no user database in some containers
        return "cli"


pass_app = click.make_pass_decorator(AppContext)


class CRMGroup(click.Group):
    """Reports every CRM error as one line with a non-zero exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CRMError as e:
            click.echo(safe(f"error: {e}"), err=True)  # stored text in a message is shown, not obeyed
            ctx.exit(e.exit_code)
        except sa_exc.OperationalError as e:
            reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
            click.echo(f"error: database error: {reason}", err=True)
            ctx.exit(2)
        except sa_exc.IntegrityError as e:
            reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
            click.echo(f"error: the change conflicts with stored data: {reason}", err=True)
            ctx.exit(1)
        except sa_exc.DataError as e:  # a value the column cannot hold that no check caught
            reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
            click.echo(safe(f"error: invalid input for the database: {reason}"), err=True)
            ctx.exit(1)
        except sa_exc.DBAPIError as e:  # e.g. "file is not a database", "database disk image is malformed"
            reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
            click.echo(safe(f"error: database error: {reason}"), err=True)
            ctx.exit(2)
        except (BrokenPipeError, KeyboardInterrupt):
            ctx.exit(130)
