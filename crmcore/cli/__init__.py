"""The ``crm`` command. ``build_cli()`` makes the root group; plugin commands are added per
process from the enabled plugins' ``crm_register_commands`` hooks, when first needed."""
from __future__ import annotations

import os
from typing import Any

import click

from crmcore.cli.context import AppContext, CRMGroup, default_actor
from crmcore.errors import CRMError


class RootGroup(CRMGroup):
    def invoke(self, ctx: click.Context) -> Any:
        """Besides CRM errors, an unexpected error (a bug) is one line too; CRM_DEBUG=1 shows the traceback."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as e:
            if os.environ.get("CRM_DEBUG"):
                raise
            click.echo(f"error: internal error: {type(e).__name__}: {e} (set CRM_DEBUG=1 to see the traceback)", err=True)
            ctx.exit(3)

    def _app(self, ctx: click.Context) -> AppContext:
        if ctx.obj is None:
            ctx.obj = AppContext(database=ctx.params.get("database"), actor=ctx.params.get("user") or default_actor(),
                                 plugins=getattr(self, "crm_plugins", ()))
        return ctx.obj

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        if "crm.plugin_commands" not in ctx.meta:
            commands: dict[str, click.Command] = {}
            try:
                crm = self._app(ctx).crm()
                holder = click.Group()
                crm.hooks.register_commands(holder)
                commands = {n: c for n, c in holder.commands.items() if n not in self.commands}
                for clash in sorted(set(holder.commands) & set(self.commands)):
                    click.echo(f"warning: a plugin's command {clash!r} is ignored: it is a core command", err=True)
            except CRMError as e:
                if ctx.resilient_parsing is False and "database" not in str(e) and "initialised" not in str(e):
                    click.echo(f"warning: plugin commands unavailable: {e}", err=True)
            ctx.meta["crm.plugin_commands"] = commands
        return ctx.meta["crm.plugin_commands"]

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*self.commands, *self._plugin_commands(ctx)])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        return self._plugin_commands(ctx).get(name)


def build_cli(plugins: tuple[object, ...] = ()) -> click.Group:
    """The root group; ``plugins`` are registered in code (embedding, tests) besides the enabled ones."""
    from crmcore.cli import accounts, admin, config, customers, interactions
    from crmcore.cli.params import USERNAME

    @click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("--database", "-d", metavar="URL", help="Database URL (else CRM_DATABASE_URL, crm.toml, sqlite:///crm.db).")
    @click.option("--user", "-u", metavar="USERNAME", type=USERNAME, help="Who is acting, for the audit log (else CRM_USER).")
    @click.version_option(package_name="crmcore")
    @click.pass_context
    def cli(ctx: click.Context, database: str | None, user: str | None) -> None:
        """crm: a plugin-extensible CRM. Run `crm init`, then `crm customer add`."""
        app = ctx.ensure_object(AppContext)
        app.database = database
        app.actor = user or default_actor()
        app.plugins = getattr(ctx.command, "crm_plugins", ())
        ctx.call_on_close(app.close)

    for module in (admin, config, customers, interactions, accounts):
        module.register(cli)
    from crmcore.bulk import cli as bulk_cli

    bulk_cli.register(cli)
    cli.crm_plugins = tuple(plugins)  # type: ignore[attr-defined]
    return cli


def main(argv: list[str] | None = None) -> Any:
    return build_cli().main(args=argv, prog_name="crm")
